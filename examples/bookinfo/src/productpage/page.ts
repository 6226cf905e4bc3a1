/**
 * The product page (Istio's `templates/productpage.html`, without Tailwind and script):
 * the sign-in form or the signed-in user, the book, its details table, and its reviews
 * with each rating's stars in the color the reviews service gives. Backend failures show
 * the original's headings and messages. Links are relative, as in the original, so the
 * page works behind a gateway prefix.
 */
import type { Fetched } from './backends.js';
import { escapeHtml } from './html.js';
import type { Product } from './products.js';

export interface PageModel {
  /** The signed-in user, or ''. */
  readonly user: string;
  readonly product: Product;
  readonly details: Fetched;
  readonly reviews: Fetched;
}

type Json = Readonly<Record<string, unknown>>;

const MAX_STARS = 5;

export function renderProductPage(m: PageModel): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Simple Bookstore App</title>
<link rel="stylesheet" href="static/bookinfo.css">
</head>
<body>
${navigation(m.user)}
<main>
<section class="product">
<h1>${escapeHtml(m.product.title)}</h1>
<p>${m.product.descriptionHtml}</p>
</section>
${detailsSection(m.details)}
${reviewsSection(m.reviews)}
</main>
</body>
</html>
`;
}

function navigation(user: string): string {
  const right = user !== ''
    ? `<span class="user">${escapeHtml(user)}</span> <a href="logout">Sign out</a>`
    : `<form method="post" action="login" name="login_form">
<input id="username" name="username" placeholder="Username" required>
<input id="password" name="passwd" type="password" placeholder="Password">
<button type="submit">Sign in</button>
</form>`;
  return `<nav><span class="brand">BookInfo Sample</span>\n${right}\n</nav>`;
}

function detailsSection(details: Fetched): string {
  if (details.status !== 200) return `<section class="details">\n${failure('Error fetching product details', details.body)}\n</section>`;
  const d = asObject(details.body);
  const cells = ['ISBN-10', 'publisher', 'pages', 'type', 'language'].map((k) => `<td>${escapeHtml(d[k])}</td>`).join('');
  return `<section class="details">
<h4>Book Details</h4>
<table>
<thead><tr><th>ISBN-10</th><th>Publisher</th><th>Pages</th><th>Type</th><th>Language</th></tr></thead>
<tbody><tr>${cells}</tr></tbody>
</table>
</section>`;
}

function reviewsSection(reviews: Fetched): string {
  if (reviews.status !== 200) return `<section class="reviews">\n${failure('Error fetching product reviews', reviews.body)}\n</section>`;
  const r = asObject(reviews.body);
  const list = Array.isArray(r.reviews) ? r.reviews : [];
  const servedBy = `Reviews served by: ${escapeHtml(r.podname)}${r.clustername !== undefined && r.clustername !== 'null' ? ` on cluster ${escapeHtml(r.clustername)}` : ''}`;
  const items = list.map((item: unknown) => review(asObject(item), servedBy)).join('\n');
  return `<section class="reviews">\n<h4>Book Reviews</h4>\n${items}\n</section>`;
}

function review(item: Json, servedBy: string): string {
  return `<article class="review">
${rating(item.rating)}<blockquote><p>"${escapeHtml(item.text)}"</p></blockquote>
<div class="reviewer">${escapeHtml(item.reviewer)}</div>
<div class="served-by">${servedBy}</div>
</article>`;
}

/** Filled stars for the rating and empty ones up to five; the error text if ratings failed; nothing in v1. */
function rating(value: unknown): string {
  const r = asObject(value);
  if (typeof r.stars === 'number' && r.stars > 0) {
    const n = Math.min(MAX_STARS, Math.floor(r.stars));
    const stars = '<span class="star">&#9733;</span>'.repeat(n) + '<span class="star-empty">&#9734;</span>'.repeat(MAX_STARS - n);
    return `<div class="rating" style="color: ${cssColor(r.color)}">${stars}</div>\n`;
  }
  if (r.error !== undefined) return `<p class="rating-error">${escapeHtml(r.error)}</p>\n`;
  return '';
}

/** The color as given if it is a CSS color name or hex value (it lands in a style attribute), else black. */
function cssColor(value: unknown): string {
  return typeof value === 'string' && /^(?:[a-z]{1,32}|#[0-9a-f]{3,8})$/i.test(value) ? value : 'black';
}

function failure(heading: string, body: unknown): string {
  const error = asObject(body).error;
  return `<p class="error">${heading}</p>${error !== undefined ? `\n<p class="error-detail">${escapeHtml(error)}</p>` : ''}`;
}

function asObject(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}
