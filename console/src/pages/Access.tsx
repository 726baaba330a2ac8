import type { ReactNode } from 'react';
import type { Session } from '../api.js';
export default function Access(_: { session: Session }): ReactNode {
  return <h1>Access</h1>;
}
