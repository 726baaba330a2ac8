/**
 * Azure Monitor activity log → OCSF 1.1 API Activity, as in the Security Lake
 * custom-source walkthrough. Input: the records Azure diagnostic settings
 * forward (to an event hub or storage), one per line, or a `{"records": [...]}`
 * line as event hubs deliver them.
 *
 * The subscription (from `resourceId`) is the partition's account, `location`
 * its region. `operationName` ending in `/read` is Read, `/write` Update (Azure
 * does not tell create from update), `/delete` Delete, `/action` Other.
 */
import type { Mapping } from './mapping.js';

const UPN = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn';
const OID = 'http://schemas.microsoft.com/identity/claims/objectidentifier';
const TENANT = 'http://schemas.microsoft.com/identity/claims/tenantid';

export const AZURE_ACTIVITY: Mapping = {
  name: 'azure_activity',
  description: 'Azure Monitor activity log → API Activity',
  product: { name: 'Azure Monitor Activity Log', vendor_name: 'Microsoft' },
  unwrap: 'records',
  time: { time: { coalesce: ['time', 'eventTimestamp'] } },
  severity: { lookup: { coalesce: ['level', 'Level'] }, table: { Informational: 1, Information: 1, Warning: 3, Error: 4, Critical: 5 }, default: 1 },
  status: {
    lookup: { coalesce: ['resultType', 'ResultType'] },
    table: { Success: 1, Succeeded: 1, Failure: 2, Failed: 2, Start: 99, Accept: 99, Started: 99, Accepted: 99 },
    default: 0,
  },
  common: {
    'metadata.uid': { coalesce: ['eventDataId', 'properties.eventDataId', 'correlationId'] },
    'metadata.correlation_uid': 'correlationId',
    'metadata.log_provider': 'Azure Monitor',
    'metadata.log_name': { coalesce: ['category', 'Category'] },
    'metadata.event_code': 'operationName',
    'metadata.original_time': 'time',
    'cloud.provider': { const: 'Azure' },
    'cloud.region': { lower: { coalesce: ['location', 'Location'] } },
    'cloud.account.uid': { lower: { regex: 'resourceId', pattern: '/subscriptions/([^/]+)' } },
    status_code: { coalesce: ['resultSignature', 'properties.statusCode'] },
    status_detail: { coalesce: ['resultDescription', 'properties.statusMessage'] },
    message: { template: '{operationName} {resultType}' },
  },
  rules: [
    {
      name: 'api-activity',
      when: { path: 'operationName', exists: true },
      class: 'api_activity',
      activity: {
        match: 'operationName',
        patterns: [
          ['/read$', 2],
          ['/write$', 3],
          ['/delete$', 4],
          ['/action$', 99],
        ],
        default: 0,
      },
      fields: {
        'actor.user.name': { coalesce: ['identity.claims.name', `identity.claims["${UPN}"]`, 'caller'] },
        'actor.user.uid': { coalesce: [`identity.claims["${OID}"]`, 'identity.authorization.evidence.principalId', 'caller'] },
        'actor.user.email_addr': `identity.claims["${UPN}"]`,
        'actor.user.type': 'identity.authorization.evidence.principalType',
        'actor.idp.uid': `identity.claims["${TENANT}"]`,
        'actor.authorizations': {
          one: { 'policy.name': 'identity.authorization.evidence.role', 'policy.uid': 'identity.authorization.evidence.roleAssignmentId', 'policy.desc': 'identity.authorization.action' },
        },
        'api.operation': 'operationName',
        'api.service.name': { regex: 'operationName', pattern: '^([^/]+)' },
        'api.request.uid': 'correlationId',
        'api.response.code': { lookup: 'properties.statusCode', table: { OK: 200, Created: 201, Accepted: 202, NoContent: 204, BadRequest: 400, Forbidden: 403, NotFound: 404, Conflict: 409 } },
        'src_endpoint.ip': { ip: 'callerIpAddress' },
        // A caller that is not an address (`automation.azure.com`) is the endpoint's name.
        'src_endpoint.name': { regex: 'callerIpAddress', pattern: '^([A-Za-z][^\\s:]*)$' },
        resources: { one: { uid: 'resourceId', type: { regex: 'resourceId', pattern: '/providers/([^/]+/[^/]+)/' } } },
      },
    },
  ],
  unmapped: ['identity.authorization.action', 'identity.authorization.scope', 'identity.authorization.evidence.role', 'properties', 'category'],
};
