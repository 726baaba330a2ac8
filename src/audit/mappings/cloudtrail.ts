/**
 * AWS CloudTrail management events → OCSF 1.1, split into three classes the
 * way Amazon Security Lake does: sign-ins and session tokens are
 * Authentication, IAM user/role/policy administration is Account Change, and
 * every other call is API Activity. Input: one CloudTrail record per line (or
 * a `{"Records": [...]}` digest line).
 */
import type { Expr, Mapping } from './mapping.js';

const ACTOR_USER = {
  'actor.user.uid': { coalesce: ['userIdentity.arn', 'userIdentity.principalId'] },
  'actor.user.name': { coalesce: ['userIdentity.userName', 'userIdentity.sessionContext.sessionIssuer.userName', 'userIdentity.principalId', 'userIdentity.invokedBy'] },
  'actor.user.type': 'userIdentity.type',
  'actor.user.account.uid': 'userIdentity.accountId',
  'actor.session.uid': 'userIdentity.accessKeyId',
  'actor.session.issuer': 'userIdentity.sessionContext.sessionIssuer.arn',
  'actor.invoked_by': 'userIdentity.invokedBy',
} satisfies Record<string, Expr>;

const AUTH_EVENTS = ['ConsoleLogin', 'GetSessionToken', 'GetFederationToken', 'AssumeRole', 'AssumeRoleWithSAML', 'AssumeRoleWithWebIdentity', 'ExitRole', 'SwitchRole', 'CheckMfa', 'Logout'];

const ACCOUNT_ACTIVITIES: Readonly<Record<string, number>> = {
  CreateUser: 1,
  CreateRole: 1,
  CreateLoginProfile: 1,
  EnableMFADevice: 10,
  DeactivateMFADevice: 11,
  DeleteUser: 6,
  DeleteRole: 6,
  DeleteLoginProfile: 5,
  UpdateLoginProfile: 4,
  ChangePassword: 3,
  AttachUserPolicy: 7,
  AttachRolePolicy: 7,
  AttachGroupPolicy: 7,
  PutUserPolicy: 7,
  PutRolePolicy: 7,
  DetachUserPolicy: 8,
  DetachRolePolicy: 8,
  DetachGroupPolicy: 8,
  DeleteUserPolicy: 8,
  DeleteRolePolicy: 8,
  UpdateAccessKey: 99,
  CreateAccessKey: 99,
  DeleteAccessKey: 99,
};

export const CLOUDTRAIL: Mapping = {
  name: 'cloudtrail',
  description: 'AWS CloudTrail management events → Authentication, Account Change, API Activity',
  product: { name: 'CloudTrail', vendor_name: 'AWS', version: 'eventVersion' },
  unwrap: 'Records',
  time: { time: 'eventTime' },
  status: { lookup: { test: 'errorCode' }, table: { true: 2, false: 1 } },
  severity: { lookup: { test: 'errorCode' }, table: { true: 2, false: 1 } },
  common: {
    'metadata.uid': 'eventID',
    'metadata.log_provider': 'CloudTrail',
    'metadata.event_code': 'eventName',
    'metadata.original_time': 'eventTime',
    'cloud.provider': { const: 'AWS' },
    'cloud.region': 'awsRegion',
    'cloud.account.uid': { coalesce: ['recipientAccountId', 'userIdentity.accountId'] },
    'src_endpoint.ip': { ip: 'sourceIPAddress' },
    'src_endpoint.domain': { coalesce: [{ regex: 'sourceIPAddress', pattern: '^([a-z0-9.-]+\\.amazonaws\\.com)$' }] },
    // Neither an address nor a service domain (`AWS Internal`): keep the text as the endpoint's name.
    'src_endpoint.name': { regex: 'sourceIPAddress', pattern: '^([^0-9:][^.]*)$' },
    'src_endpoint.uid': 'vpcEndpointId',
    'http_request.user_agent': 'userAgent',
    status_code: 'errorCode',
    status_detail: 'errorMessage',
    message: { template: '{eventSource} {eventName}' },
  },
  rules: [
    {
      name: 'authentication',
      when: { path: 'eventName', in: AUTH_EVENTS },
      class: 'authentication',
      activity: { lookup: 'eventName', table: { ExitRole: 2, Logout: 2, GetSessionToken: 3, GetFederationToken: 3 }, default: 1 },
      fields: {
        ...ACTOR_USER,
        'user.uid': { coalesce: ['userIdentity.arn', 'userIdentity.principalId'] },
        'user.name': { coalesce: ['userIdentity.userName', 'requestParameters.roleSessionName', 'userIdentity.principalId'] },
        'user.type': 'userIdentity.type',
        'user.account.uid': 'userIdentity.accountId',
        'service.name': 'eventSource',
        'dst_endpoint.svc_name': 'eventSource',
        is_mfa: { lookup: 'additionalEventData.MFAUsed', table: { Yes: true, No: false } },
        auth_protocol: { lookup: 'eventName', table: { ConsoleLogin: 'Password', AssumeRoleWithSAML: 'SAML', AssumeRoleWithWebIdentity: 'OpenID' }, default: 'AWS SigV4' },
        auth_protocol_id: { lookup: 'eventName', table: { AssumeRoleWithSAML: 5, AssumeRoleWithWebIdentity: 99, ConsoleLogin: 99 }, default: 99 },
        // ConsoleLogin reports failure in responseElements, not errorCode.
        status_id: { lookup: { coalesce: ['responseElements.ConsoleLogin', { lookup: { test: 'errorCode' }, table: { true: 'Failure', false: 'Success' } }] }, table: { Success: 1, Failure: 2 }, default: 1 },
        status: { lookup: { coalesce: ['responseElements.ConsoleLogin', { lookup: { test: 'errorCode' }, table: { true: 'Failure', false: 'Success' } }] }, table: { Success: 'Success', Failure: 'Failure' }, default: 'Success' },
        severity_id: { lookup: 'responseElements.ConsoleLogin', table: { Failure: 3 }, default: 1 },
        severity: { lookup: 'responseElements.ConsoleLogin', table: { Failure: 'Medium' }, default: 'Informational' },
      },
    },
    {
      name: 'account-change',
      when: { path: 'eventName', in: Object.keys(ACCOUNT_ACTIVITIES) },
      class: 'account_change',
      activity: { lookup: 'eventName', table: ACCOUNT_ACTIVITIES, default: 99 },
      fields: {
        ...ACTOR_USER,
        'user.name': { coalesce: ['requestParameters.userName', 'requestParameters.roleName', 'requestParameters.groupName', 'userIdentity.userName'] },
        'user.uid': { coalesce: ['responseElements.user.arn', 'responseElements.role.arn', 'responseElements.user.userId'] },
        'user.account.uid': 'recipientAccountId',
        'policy.uid': 'requestParameters.policyArn',
        'policy.name': { coalesce: ['requestParameters.policyName', { regex: 'requestParameters.policyArn', pattern: '/([^/]+)$' }] },
        activity_name: { lookup: 'eventName', table: { UpdateAccessKey: 'Access Key Update', CreateAccessKey: 'Access Key Create', DeleteAccessKey: 'Access Key Delete' } },
      },
    },
    {
      name: 'api-activity',
      class: 'api_activity',
      activity: {
        match: 'eventName',
        patterns: [
          ['^(Create|Put|Run|Start|Add|Import|Register|Allocate|Issue|Copy|Upload)', 1],
          ['^(Get|List|Describe|Head|Lookup|Search|Select|Scan|Query|BatchGet|Filter|Check|Test|Validate)', 2],
          ['^(Update|Modify|Set|Change|Attach|Associate|Enable|Disable|Tag|Untag|Reset|Replace|Restore|Reboot|Rotate)', 3],
          ['^(Delete|Remove|Terminate|Stop|Detach|Disassociate|Deregister|Release|Revoke|Cancel|Purge)', 4],
        ],
        default: 99,
      },
      fields: {
        ...ACTOR_USER,
        'api.operation': 'eventName',
        'api.service.name': 'eventSource',
        'api.request.uid': 'requestID',
        'api.response.error': 'errorCode',
        'api.response.message': 'errorMessage',
        'api.version': 'apiVersion',
        resources: { each: 'resources', fields: { uid: 'ARN', type: 'type', 'owner.uid': 'accountId' } },
      },
    },
  ],
  unmapped: ['requestParameters', 'responseElements', 'additionalEventData', 'eventType', 'managementEvent', 'readOnly', 'eventCategory', 'tlsDetails.tlsVersion'],
};
