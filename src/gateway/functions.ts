/**
 * The functions a governed query may call: an allow-list, so that a function
 * DuckDB adds in a later release is refused until someone reads what it does.
 *
 * Left out on purpose (each would be refused by name):
 * - anything that reveals the environment, the configuration or the query as
 *   rewritten: `current_setting`, `getvariable`, `current_query`, `version`,
 *   `current_database`, `current_schema(s)`, `current_user`, `pg_*`, `has_*_privilege`,
 *   `txid_current`, `current_connection_id`, `in_search_path`;
 * - `stats`, which prints the statistics of its argument: for a lake column they
 *   come from file metadata and would show the min/max of rows a filter hides;
 * - parser and plan functions (`json_serialize_sql`, `json_deserialize_sql`,
 *   `json_serialize_plan`), sequences (`nextval`, `currval`), logging
 *   (`write_log`), sleeping (`sleep_ms`, `pg_sleep`), global state (`setseed`),
 *   aggregate-state plumbing (`finalize`, `combine`, export_state) and the
 *   `__internal_*` helpers;
 * - every table function (`read_csv`, `read_parquet`, `glob`, `query_table`,
 *   `duckdb_settings`, …): those are table references, refused by the analyzer.
 */

const SCALAR = `
abs acos acosh add age ascii asin asinh atan atan2 atanh bar base64 bin bit_count bit_length bit_position bitstring
can_cast_implicitly cardinality cbrt ceil ceiling century char_length character_length chr coalesce concat concat_ws
constant_or_null contains cos cosh cot damerau_levenshtein date_add date_diff date_part date_sub date_trunc datediff datepart
datesub datetrunc day dayname dayofmonth dayofweek dayofyear days_in_month decade decode degrees divide editdist3 encode
ends_with epoch epoch_ms epoch_ns epoch_us equi_width_bins era error even exp factorial fdiv fmod floor format format_bytes
formatreadabledecimalsize formatreadablesize from_base64 from_binary from_hex gamma gcd gen_random_uuid get_bit
get_current_time get_current_timestamp greatest greatest_common_divisor hamming hash hex hour ilike_escape instr
isfinite isinf isnan isodow isoyear jaccard jaro_similarity jaro_winkler_similarity julian last_day lcase lcm least
least_common_multiple left left_grapheme len length length_grapheme levenshtein lgamma like_escape ln log log10 log2 lower
lpad ltrim make_date make_time make_timestamp make_timestamp_ms make_timestamp_ns make_timestamptz md5 md5_number
md5_number_lower md5_number_upper microsecond millennium millisecond minute mismatches mod month monthname multiply
nanosecond nextafter nfc_normalize normalized_interval not_ilike_escape not_like_escape now nullif octet_length ord
pi position pow power prefix printf quarter radians random regexp_escape regexp_extract regexp_extract_all
regexp_full_match regexp_matches regexp_replace regexp_split_to_array repeat replace reverse right right_grapheme round
round_even roundbankers second set_bit sha1 sha256 sign signbit sin sinh split split_part sqrt starts_with strftime
string_split string_split_regex string_to_array strip_accents strlen strpos strptime str_split str_split_regex substr
substring substring_grapheme subtract suffix tan tanh time_bucket timezone timezone_hour timezone_minute to_base
to_base64 to_binary to_centuries to_days to_decades to_hex to_hours to_microseconds to_millennia to_milliseconds
to_minutes to_months to_quarters to_seconds to_timestamp to_weeks to_years today transaction_timestamp translate trim
trunc try_strptime typeof ucase unbin unhex unicode upper url_decode url_encode uuid uuidv4 uuidv7 uuid_extract_timestamp
uuid_extract_version week weekday weekofyear xor year yearweek current_date current_localtime current_localtimestamp
get_type ago
list_value list_pack list_aggr list_aggregate list_apply list_cat list_concat list_contains list_cosine_distance
list_cosine_similarity list_distance list_distinct list_dot_product list_element list_extract list_filter list_grade_up
list_has list_has_all list_has_any list_indexof list_inner_product list_intersect list_negative_dot_product
list_negative_inner_product list_position list_reduce list_resize list_reverse_sort list_select list_slice list_sort
list_transform list_unique list_where list_zip list_append list_prepend list_reverse list_any_value list_avg list_count
list_first list_last list_max list_min list_median list_mode list_sum list_product list_string_agg list_bool_and
list_bool_or list_stddev_pop list_stddev_samp list_var_pop list_var_samp list_histogram list_approx_count_distinct
array_value array_aggr array_aggregate array_apply array_cat array_concat array_contains array_cosine_distance
array_cosine_similarity array_cross_product array_distance array_distinct array_dot_product array_extract array_filter
array_grade_up array_has array_has_all array_has_any array_indexof array_inner_product array_intersect array_length
array_negative_dot_product array_negative_inner_product array_position array_reduce array_resize array_reverse_sort
array_select array_slice array_sort array_transform array_unique array_where array_zip array_append array_prepend
array_pop_back array_pop_front array_push_back array_push_front array_reverse array_to_string
apply filter flatten reduce grade_up generate_series range element_at unnest
struct_pack struct_extract struct_extract_at struct_concat struct_insert struct_update struct_keys struct_values
struct_has struct_contains struct_indexof struct_position row remap_struct
map map_concat map_contains map_contains_entry map_contains_value map_entries map_extract map_extract_value
map_from_entries map_keys map_values cardinality union_extract union_tag union_value
enum_code enum_first enum_last enum_range enum_range_boundary
json json_array json_array_length json_contains json_exists json_extract json_extract_path json_extract_path_text
json_extract_string json_keys json_merge_patch json_object json_pretty json_quote json_structure json_transform
json_transform_strict json_type json_valid json_value to_json array_to_json row_to_json from_json from_json_strict
`;

const OPERATORS = `
+ - * / // % ** ^ || & | << >> ~ ! @ !__postfix ~~ !~~ ~~* !~~* ~~~ ^@ <-> <=> <@ @> && ->>
`;

const AGGREGATE = `
any_value approx_count_distinct approx_quantile approx_top_k arbitrary arg_max arg_max_null arg_max_nulls_last arg_min
arg_min_null arg_min_nulls_last argmax argmin array_agg avg bit_and bit_or bit_xor bitstring_agg bool_and bool_or corr
count count_if count_star countif covar_pop covar_samp entropy favg first fsum geomean geometric_mean group_concat
histogram histogram_exact kahan_sum kurtosis kurtosis_pop last list listagg mad max max_by mean median min min_by mode
product quantile quantile_cont quantile_disc regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx
regr_sxy regr_syy reservoir_quantile sem skewness stddev stddev_pop stddev_samp string_agg sum sum_no_overflow sumkahan
var_pop var_samp variance wavg weighted_avg json_group_array json_group_object
`;

const WINDOW_ONLY = `
row_number rank dense_rank rank_dense percent_rank cume_dist ntile lag lead first_value last_value nth_value fill
`;

const words = (text: string): ReadonlySet<string> => new Set(text.split(/\s+/).filter((w) => w.length > 0));

/** Scalar functions and operators a query may call, lowercase. */
export const ALLOWED_SCALAR_FUNCTIONS: ReadonlySet<string> = new Set([...words(SCALAR), ...words(OPERATORS)]);
/** Aggregates (plain, or as window functions). */
export const ALLOWED_AGGREGATES: ReadonlySet<string> = words(AGGREGATE);
/** Functions that only exist as window functions. */
export const ALLOWED_WINDOW_FUNCTIONS: ReadonlySet<string> = new Set([...words(WINDOW_ONLY), ...words(AGGREGATE)]);

/** True when a plain function call (not a window) may be made. */
export function isAllowedFunction(name: string): boolean {
  return ALLOWED_SCALAR_FUNCTIONS.has(name) || ALLOWED_AGGREGATES.has(name);
}
