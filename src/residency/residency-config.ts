/**
 * Regions from configuration (docs/residency.md): the workspace's
 * (`STEWARD_REGION`), lake folders' (`STEWARD_LAKE_REGIONS`) and Trino
 * catalogs' (`STEWARD_TRINO_REGIONS`). Anything not marked is in the
 * workspace's region; with no workspace region it is in none, and no
 * residency guardrail admits it.
 */
import type { Config } from '../config.js';
import type { LakeRegions } from '../catalog/lake-regions.js';

type RegionConfig = Pick<Config, 'region' | 'lakeRegions' | 'trinoRegions' | 'trinoCatalogs'>;

export function lakeRegionsOf(config: Pick<RegionConfig, 'region' | 'lakeRegions'>): LakeRegions {
  return { folders: config.lakeRegions, fallback: config.region ?? null };
}

/**
 * The region of the Trino catalog under which a Steward catalog is reachable:
 * its mapped name when STEWARD_TRINO_CATALOGS maps one onto it, else its own.
 */
export function trinoRegionOf(config: RegionConfig, stewardCatalog: string): string | null {
  const trinoName = Object.entries(config.trinoCatalogs).find(([, to]) => to === stewardCatalog)?.[0] ?? stewardCatalog;
  return regionOfTrinoCatalog(config, trinoName);
}

export function regionOfTrinoCatalog(config: Pick<RegionConfig, 'region' | 'trinoRegions'>, trinoCatalog: string): string | null {
  const own = Object.hasOwn(config.trinoRegions, trinoCatalog) ? config.trinoRegions[trinoCatalog] : undefined;
  return own ?? config.trinoRegions['*'] ?? config.region ?? null;
}
