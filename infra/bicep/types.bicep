// Types shared by main.bicep and its modules.

@export()
@description('The hosting plan: Flex Consumption (FC1, Linux), Elastic Premium (EP1, Linux) or Consumption (Y1, Windows: the only Consumption plan that runs .NET 10 isolated).')
type hostingPlan = 'FlexConsumption' | 'Premium' | 'Consumption'

@export()
@description('Which Redis: Azure Managed Redis (the default) or Azure Cache for Redis (legacy: being retired).')
type redisKind = 'ManagedRedis' | 'CacheForRedis'

@export()
@description('How the app authenticates to Redis: its system-assigned identity (Entra ID) or an access key kept in Key Vault.')
type redisAuthentication = 'ManagedIdentity' | 'AccessKey'

@export()
@description('Overrides of the PollLease options, in app-setting values (TimeSpan as c format, numbers and booleans as text).')
type pollLeaseOverrides = {
  @description('PollLease:KeyPrefix')
  keyPrefix: string?
  @description('PollLease:LeaseTtl')
  leaseTtl: string?
  @description('PollLease:RenewInterval')
  renewInterval: string?
  @description('PollLease:RetryInterval')
  retryInterval: string?
  @description('PollLease:HeartbeatTtl')
  heartbeatTtl: string?
  @description('PollLease:HeartbeatInterval')
  heartbeatInterval: string?
  @description('PollLease:SafetyMargin')
  safetyMargin: string?
  @description('PollLease:OperationTimeout')
  operationTimeout: string?
  @description('PollLease:ShutdownTimeout (below 5 s)')
  shutdownTimeout: string?
  @description('PollLease:BalanceEpsilon')
  balanceEpsilon: string?
  @description('PollLease:Polling:MaxConcurrency')
  pollingMaxConcurrency: string?
  @description('PollLease:Polling:PollTimeout')
  pollingPollTimeout: string?
  @description('PollLease:Polling:Tick')
  pollingTick: string?
  @description('PollLease:Polling:Jitter')
  pollingJitter: string?
  @description('PollLease:Polling:StrictOwnershipCheck')
  pollingStrictOwnershipCheck: string?
  @description('PollLease:Polling:PollTraceLevel')
  pollingPollTraceLevel: string?
  @description('PollLease:Polling:DefaultInterval')
  pollingDefaultInterval: string?
  @description('PollLease:Http:AllowInsecureHttp')
  httpAllowInsecureHttp: string?
  @description('PollLease:Http:Timeout')
  httpTimeout: string?
  @description('PollLease:Http:MaxRedirects')
  httpMaxRedirects: string?
  @description('PollLease:Http:MaxBodyBytes')
  httpMaxBodyBytes: string?
  @description('PollLease:Http:Store')
  httpStore: string?
  @description('PollLease:Messages:MaxLength')
  messagesMaxLength: string?
  @description('PollLease:Messages:Ttl')
  messagesTtl: string?
  @description('PollLease:Janitor:Enabled')
  janitorEnabled: string?
  @description('PollLease:Janitor:Interval')
  janitorInterval: string?
  @description('PollLease:Janitor:ScanPageSize')
  janitorScanPageSize: string?
  @description('PollLease:Janitor:CleanOrphans')
  janitorCleanOrphans: string?
  @description('PollLease:Janitor:PublishAssignment')
  janitorPublishAssignment: string?
}
