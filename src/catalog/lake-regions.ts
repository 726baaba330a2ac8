/**
 * The regions a lake location lies in (docs/residency.md). Folders are marked
 * with a region in configuration (`STEWARD_LAKE_REGIONS`); a path's region is
 * that of the most specific marked folder containing its real path, else the
 * workspace's region, else none (`null`, which no residency rule allows).
 *
 * A location is judged where its bytes are, not where its name points:
 * - `..` and trailing slashes are resolved first, and folders compare by whole
 *   segments (`/lake/eu-copy` is not inside `/lake/eu`);
 * - symlinks are resolved, in the location and in the marked folders;
 * - a glob or a folder spans everything under the folder before its first
 *   wildcard: every marked folder below it counts, and every symlink found
 *   there counts with its target's region, so `lake/*\/x.parquet` across an
 *   `eu` and a `us` folder is in both;
 * - case is compared as the file system stores it: on Linux `/lake/EU` is
 *   another folder than `/lake/eu`, and gets its own region.
 * A walk that finds more entries than `MAX_WALK` gives up and adds `null`:
 * what was not seen cannot be vouched for.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inside, realLocation } from './lake-roots.js';

export interface LakeRegions {
  /** Absolute folder → region. */
  readonly folders: Readonly<Record<string, string>>;
  /** The workspace's region: every path outside a marked folder. */
  readonly fallback: string | null;
}

export const MAX_WALK = 20_000;

/** Every region `location` spans, deduplicated, in the order found. */
export function regionsOfLocation(location: string, config: LakeRegions, options: { readonly maxWalk?: number } = {}): (string | null)[] {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return [null];
  const folders = Object.entries(config.folders).map(([dir, region]) => ({ dir: realLocation(dir), region }));
  const regionOf = (real: string): string | null => {
    let best: { dir: string; region: string } | undefined;
    for (const f of folders) if (inside(real, f.dir) && (best === undefined || f.dir.length > best.dir.length)) best = f;
    return best?.region ?? config.fallback;
  };
  const out = new Set<string | null>();
  const real = realLocation(location);
  out.add(regionOf(real));
  const spanning = /[*?[{]/.test(path.resolve(location)) || isDirectory(real);
  if (!spanning) return [...out];
  // The folder before the first wildcard (realLocation keeps the glob part as written).
  const globAt = real.search(/[*?[{]/);
  const base = globAt < 0 ? real : real.slice(0, real.lastIndexOf(path.sep, globAt) + 1) || path.sep;
  const addBelow = (dir: string): void => {
    out.add(regionOf(dir));
    for (const f of folders) if (inside(f.dir, dir)) out.add(f.region);
  };
  addBelow(base);
  walk(base, options.maxWalk ?? MAX_WALK, (target) => addBelow(target), () => out.add(null));
  return [...out];
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Visits every symlink under `dir` (resolved; folders they point to are
 * walked too, once each). `tooMany` is called when the walk stops early.
 */
function walk(dir: string, maxEntries: number, onLink: (real: string) => void, tooMany: () => void): void {
  const seen = new Set<string>();
  const queue = [dir];
  let entries = 0;
  while (queue.length > 0) {
    const current = queue.pop() as string;
    if (seen.has(current)) continue;
    seen.add(current);
    let list: fs.Dirent[];
    try {
      list = fs.readdirSync(current, { withFileTypes: true });
    } catch {
      continue; // a missing or unreadable folder holds nothing to read either
    }
    for (const e of list) {
      if (++entries > maxEntries) return tooMany();
      const full = path.join(current, e.name);
      if (e.isSymbolicLink()) {
        let target: string;
        try {
          target = fs.realpathSync(full);
        } catch {
          continue; // a dangling link reads nothing
        }
        onLink(target);
        if (isDirectory(target)) queue.push(target);
      } else if (e.isDirectory()) {
        queue.push(full);
      }
    }
  }
}
