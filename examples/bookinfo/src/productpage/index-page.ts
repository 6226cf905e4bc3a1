/**
 * productpage's `/` (Istio's `templates/index.html`): the services behind the page as a
 * table, and links that load the product page.
 */
import { escapeHtml } from './html.js';

/** A service and the services it calls, as productpage.py's `service_dict` describes them. */
export interface ServiceNode {
  readonly name: string;
  readonly endpoint: string;
  readonly children: readonly ServiceNode[];
}

export function renderIndexPage(tree: ServiceNode): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Simple Bookstore App</title>
<link rel="stylesheet" href="static/bookinfo.css">
</head>
<body>
<main>
<h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
${serviceTable(tree)}
<h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4>
<p><a href="productpage?u=normal">Normal user</a></p>
<p><a href="productpage?u=test">Test user</a></p>
</main>
</body>
</html>
`;
}

/** A nested name/endpoint/children table, as the original's json2html renders it. */
function serviceTable(node: ServiceNode): string {
  const children = node.children.length === 0 ? '' : `<table>${node.children.map((c) => `<tr><td>${serviceTable(c)}</td></tr>`).join('')}</table>`;
  return `<table class="services">
<tr><th>name</th><td>${escapeHtml(node.name)}</td></tr>
<tr><th>endpoint</th><td>${escapeHtml(node.endpoint)}</td></tr>
<tr><th>children</th><td>${children}</td></tr>
</table>`;
}
