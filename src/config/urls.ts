/** The database URL as nano needs it (credentials merged in) and as a line may show it (none). */
import type { CouchConfig } from './types';
/** The server URL with username/password from config merged in (for nano only). */
export function authenticatedUrl(couch: Pick<CouchConfig, 'url' | 'username' | 'password'>): string {
  const url = new URL(couch.url);
  if (couch.username) url.username = encodeURIComponent(couch.username);
  if (couch.password) url.password = encodeURIComponent(couch.password);
  return url.toString().replace(/\/$/, '');
}

/** A URL fit to print: credentials removed. */
export function scrubUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url.replace(/\/$/, '');
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}
