import type { ReactNode } from 'react';
import type { Session } from '../api.js';
export default function Query(_: { session: Session }): ReactNode {
  return <h1>Query</h1>;
}
