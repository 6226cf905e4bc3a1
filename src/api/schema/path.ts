/** Field paths inside a resource, and their display form `spec.http[0].route[1].weight`. */
export type PathSegment = string | number;
export type Path = readonly PathSegment[];

export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
