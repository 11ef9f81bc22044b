/**
 * The page's files: plain HTML, CSS and JavaScript modules from ./static (no build step), and
 * uPlot, the chart library, from the package's own dependency (never a CDN: the page's
 * Content-Security-Policy allows only its own origin). index.html gets this process's action
 * token in its meta tag.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AfterError } from '../errors';

/** dist/src/ui/static-files.js (or src/ui under ts-node) → <package>/src/ui/static */
export const STATIC_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'ui', 'static');
/** Where index.html holds the token for the page's script. */
const TOKEN_META = '<meta name="after-token" content="">';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

export interface Asset {
  body: Buffer;
  type: string;
}

/** Every file the page may load, by URL path. */
export function loadAssets(token: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const add = (urlPath: string, file: string): void => {
    let body: Buffer;
    try {
      body = fs.readFileSync(file);
    } catch (err) {
      throw new AfterError('E_UI', `dashboard file ${file} cannot be read (${(err as Error).message}); is the package complete?`);
    }
    assets.set(urlPath, { body, type: CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream' });
  };
  for (const name of fs.readdirSync(STATIC_DIR)) {
    if (CONTENT_TYPES[path.extname(name)] !== undefined) add(name === 'index.html' ? '/' : `/${name}`, path.join(STATIC_DIR, name));
  }
  const uplot = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  add('/vendor/uplot.js', path.join(uplot, 'uPlot.iife.min.js'));
  add('/vendor/uplot.css', path.join(uplot, 'uPlot.min.css'));
  const index = assets.get('/');
  const html = index?.body.toString('utf8') ?? '';
  if (!html.includes(TOKEN_META)) throw new AfterError('E_UI', `dashboard file ${path.join(STATIC_DIR, 'index.html')} has no token meta tag; is the package complete?`);
  assets.set('/', { body: Buffer.from(html.replace(TOKEN_META, `<meta name="after-token" content="${token}">`)), type: CONTENT_TYPES['.html']! });
  return assets;
}
