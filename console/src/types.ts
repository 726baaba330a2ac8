/** The shapes of the API answers the console reads (see /openapi.json). */

export interface CatalogTable {
  readonly catalog: string;
  readonly database: string;
  readonly name: string;
  readonly columns: readonly { name: string; type: string; ordinal: number }[];
  readonly source: Readonly<Record<string, unknown>>;
}

export interface SearchAnswer {
  readonly results: readonly { resource: string; level: 'table' | 'column'; tags: Record<string, string> }[];
  readonly truncated: boolean;
}

export interface EffectiveTagsAnswer {
  readonly resource: string;
  readonly tags: readonly { key: string; value: string; source: string; inherited: boolean }[];
}

export interface Reason {
  readonly code: string;
  readonly message: string;
  readonly grantId?: string;
  readonly guardrail?: string;
}

export interface Decision {
  readonly decision: 'allow' | 'deny';
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly reasons: readonly Reason[];
  readonly matchedGrants: readonly string[];
  readonly deniedBy: readonly string[];
  readonly filters: readonly string[];
  readonly columns?: readonly { name: string; rowFilter: string | null }[];
  readonly rowFilter?: string | null;
}

export interface AccessAnswer {
  readonly resource: string;
  readonly action: string;
  readonly holders: readonly { principal: string; decision: Decision }[];
}
