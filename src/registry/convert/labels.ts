/** Label maps in snapshots: copied with sorted keys, so equal labels serialise equally. */
import type { Labels } from '../../api/common.js';
import { compareStrings } from '../snapshot.js';

/** Merges `maps` (later ones win) into a new map with sorted keys. */
export function sortedLabels(...maps: readonly (Labels | undefined)[]): Labels {
  const merged: Record<string, string> = {};
  for (const m of maps) if (m !== undefined) Object.assign(merged, m);
  const out: Record<string, string> = {};
  for (const key of Object.keys(merged).sort(compareStrings)) out[key] = merged[key] as string;
  return out;
}
