/**
 * The Scope 3 demo's three tables (docs/cleanrooms.md), after the reference
 * walkthrough: a reporting company's recipes, a supplier's purchased-goods
 * emissions and a carrier's transport emissions. Small and deterministic: the
 * same CSV files every time. `tea` has a single ingredient, so its output row
 * fails the "at least 2 distinct ingredients" constraint and is removed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const RECIPES: Readonly<Record<string, readonly string[]>> = {
  bread: ['wheat', 'salt', 'yeast'],
  cake: ['wheat', 'sugar', 'butter', 'egg'],
  soup: ['tomato', 'onion', 'salt'],
  tea: ['tea_leaf'],
};
const ITEMS = ['wheat', 'salt', 'yeast', 'sugar', 'butter', 'egg', 'tomato', 'onion', 'tea_leaf'] as const;
const REGIONS = ['north', 'south', 'east', 'west'] as const;
const MODES = ['truck', 'rail', 'ship'] as const;

/** A fixed, seedless spread of values: item i gets emissions from its position alone. */
const emission = (i: number, base: number): string => (base + ((i * 37) % 23) / 10).toFixed(1);

export interface Scope3Files {
  readonly reporting: string;
  readonly purchase: string;
  readonly transportation: string;
}

export async function writeScope3Data(dir: string): Promise<Scope3Files> {
  await mkdir(dir, { recursive: true });
  const files: Scope3Files = {
    reporting: path.join(dir, 'reporting.csv'),
    purchase: path.join(dir, 'purchase.csv'),
    transportation: path.join(dir, 'transportation.csv'),
  };
  const reporting = ['product,ingredient', ...Object.entries(RECIPES).flatMap(([p, ings]) => ings.map((i) => `${p},${i}`))];
  const purchase = ['item,origin_region,s3_upstream_purchased_good', ...ITEMS.map((it, i) => `${it},${REGIONS[i % REGIONS.length] ?? ''},${emission(i, 1)}`)];
  const transportation = ['item,transport_mode,s3_upstream_transportation,unit', ...ITEMS.map((it, i) => `${it},${MODES[i % MODES.length] ?? ''},${emission(i + 5, 0.2)},kgCO2e`)];
  await writeFile(files.reporting, reporting.join('\n') + '\n');
  await writeFile(files.purchase, purchase.join('\n') + '\n');
  await writeFile(files.transportation, transportation.join('\n') + '\n');
  return files;
}
