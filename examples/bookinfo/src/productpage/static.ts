/**
 * productpage's `/static/*` files. Istio's serves Tailwind and an image; a small style
 * sheet is enough here, kept in the program so `tsc` alone builds a runnable service.
 */

export const STATIC_FILES: ReadonlyMap<string, { readonly type: string; readonly body: string }> = new Map([
  ['/static/bookinfo.css', {
    type: 'text/css; charset=utf-8',
    body: `body { margin: 0; font-family: system-ui, sans-serif; color: #1f2937; }
nav { display: flex; align-items: center; justify-content: space-between; gap: 1rem; padding: 0.75rem 1.5rem; background: #1f2937; color: #f9fafb; }
nav a { color: #d1d5db; }
nav .brand { font-size: 1.125rem; font-weight: 600; }
nav form { display: flex; gap: 0.5rem; }
main { max-width: 64rem; margin: 0 auto; padding: 1.5rem; }
h1 { color: #1e3a8a; font-size: 2.5rem; }
table { border-collapse: collapse; }
th, td { padding: 0.4rem 0.8rem; text-align: left; border-bottom: 1px solid #e5e7eb; }
.reviews { display: flex; flex-wrap: wrap; gap: 1.5rem; background: #eff6ff; padding: 1.5rem; }
.reviews h4 { flex-basis: 100%; margin: 0; }
.review { flex: 1 1 20rem; }
.rating { font-size: 1.25rem; letter-spacing: 0.1rem; }
.error, .rating-error { color: #ef4444; font-size: 1.25rem; }
.reviewer { font-weight: 600; }
.served-by { font-family: monospace; color: #4b5563; }
`,
  }],
]);
