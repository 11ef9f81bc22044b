// The dashboard's own API (the page never talks to the database). Actions carry the page's
// token in a header: only this page can read it, and only a same-origin request can carry it.
const token = document.querySelector('meta[name="after-token"]').content;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called when a request finds the session gone (the page shows the sign-in form). */
let onSignedOut = () => {};
export function whenSignedOut(fn) {
  onSignedOut = fn;
}

export async function api(path, options = {}) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && body.error === 'E_SIGN_IN' && !path.startsWith('/api/session')) onSignedOut();
    throw new ApiError(res.status, body.error, body.message || `HTTP ${res.status}`);
  }
  return body;
}

export function act(path, body, method = 'POST') {
  return api(path, { method, headers: { 'content-type': 'application/json', 'x-after-token': token }, body: JSON.stringify(body) });
}

export const query = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  return search.toString();
};
