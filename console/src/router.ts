/**
 * Path routing without a library: the console's pages are a handful of
 * top-level paths, and history.pushState keeps the URL shareable.
 */
import { useEffect, useState } from 'react';

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const on = (): void => setTick((t) => t + 1);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return { path: location.pathname, search: new URLSearchParams(location.search) };
}

/** Only same-origin relative paths may be a return target (no `//host`, no scheme). */
export function safeReturnTo(value: string | null): string {
  if (value === null || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/catalog';
  return value;
}
