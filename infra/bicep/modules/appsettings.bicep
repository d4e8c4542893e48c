// Every app setting PollLease and the host read, applied as one collection once the app's identity can read Key Vault.
// tests/PollLease.Tests/Hosting/AzureConfigurationTests.cs checks that each configuration key the code binds is set in
// `appSettings` below, with the code's defaults.

import { hostingPlan, redisAuthentication, pollLeaseOverrides } from '../types.bicep'

@description('The function app.')
param functionAppName string

@description('The hosting plan.')
param plan hostingPlan

@description('Storage account behind AzureWebJobsStorage (identity-based).')
param storageAccountName string

@description('Application Insights component (connection string; ingestion is Entra ID only).')
param applicationInsightsName string

@description('Redis host name and TLS port.')
param redisEndpoint string

@description('How the app authenticates to Redis.')
param authentication redisAuthentication

@description('Key Vault holding the keys (Premium and Consumption content share, Redis with AccessKey).')
param keyVaultName string

@description('Secret holding the Azure Files connection string.')
param storageSecretName string

@description('Secret holding the Redis connection string with its key.')
param redisSecretName string

@description('Azure Files share of the app content (Premium and Consumption).')
param contentShareName string

@description('Six-field NCRONTAB (UTC) of the lease timer function.')
param timerSchedule string

@description('Overrides of the PollLease defaults below.')
param pollLease pollLeaseOverrides

@description('Hosts the http poll handler may fetch.')
param httpAllowedHosts string[]

// PollLease defaults (docs/configuration.md; PollTraceLevel is the Functions app's own default); `pollLease` overrides them.
var defaults = {
  keyPrefix: 'poll'
  leaseTtl: '00:00:30'
  renewInterval: '00:00:10'
  retryInterval: '00:00:02'
  heartbeatTtl: '00:00:30'
  heartbeatInterval: '00:00:10'
  safetyMargin: '00:00:02'
  operationTimeout: '00:00:05'
  shutdownTimeout: '00:00:03'
  balanceEpsilon: '0'
  pollingMaxConcurrency: '16'
  pollingPollTimeout: '00:00:30'
  pollingTick: '00:00:00.250'
  pollingJitter: '0.1'
  pollingStrictOwnershipCheck: 'false'
  pollingPollTraceLevel: 'Debug'
  pollingDefaultInterval: '00:00:30'
  httpAllowInsecureHttp: 'false'
  httpTimeout: '00:00:10'
  httpMaxRedirects: '3'
  httpMaxBodyBytes: '1048576'
  httpStore: 'Body'
  messagesMaxLength: '1000'
  messagesTtl: '7.00:00:00'
  janitorEnabled: 'true'
  janitorInterval: '00:00:30'
  janitorScanPageSize: '500'
  janitorCleanOrphans: 'true'
  janitorPublishAssignment: 'true'
}
var options = union(defaults, pollLease)

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// With ManagedIdentity the setting holds no secret; with AccessKey it is a Key Vault reference, never the key.
var redisConnection = authentication == 'AccessKey'
  ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${redisSecretName})'
  : '${redisEndpoint},ssl=true,abortConnect=false'

var appSettings = union({
  // Identity-based host storage (timers keep their schedule and singleton locks here).
  AzureWebJobsStorage__accountName: storageAccountName
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // Entra ID ingestion with the system-assigned identity (the component refuses anything else).
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  // Worker log levels (host.json governs the host's): PollLease lines at Information, the rest at Warning.
  Logging__LogLevel__Default: 'Warning'
  Logging__LogLevel__PollLease: 'Information'
  PollLeaseTimerSchedule: timerSchedule
  PollFunctions__RedisAuthentication: authentication
  PollLease__Redis: redisConnection
  PollLease__KeyPrefix: options.keyPrefix
  PollLease__LeaseTtl: options.leaseTtl
  PollLease__RenewInterval: options.renewInterval
  PollLease__RetryInterval: options.retryInterval
  PollLease__HeartbeatTtl: options.heartbeatTtl
  PollLease__HeartbeatInterval: options.heartbeatInterval
  PollLease__SafetyMargin: options.safetyMargin
  PollLease__OperationTimeout: options.operationTimeout
  PollLease__ShutdownTimeout: options.shutdownTimeout
  PollLease__BalanceEpsilon: options.balanceEpsilon
  PollLease__Polling__MaxConcurrency: options.pollingMaxConcurrency
  PollLease__Polling__PollTimeout: options.pollingPollTimeout
  PollLease__Polling__Tick: options.pollingTick
  PollLease__Polling__Jitter: options.pollingJitter
  PollLease__Polling__StrictOwnershipCheck: options.pollingStrictOwnershipCheck
  PollLease__Polling__PollTraceLevel: options.pollingPollTraceLevel
  PollLease__Polling__DefaultInterval: options.pollingDefaultInterval
  PollLease__Http__AllowInsecureHttp: options.httpAllowInsecureHttp
  PollLease__Http__Timeout: options.httpTimeout
  PollLease__Http__MaxRedirects: options.httpMaxRedirects
  PollLease__Http__MaxBodyBytes: options.httpMaxBodyBytes
  PollLease__Http__Store: options.httpStore
  PollLease__Messages__MaxLength: options.messagesMaxLength
  PollLease__Messages__Ttl: options.messagesTtl
  PollLease__Janitor__Enabled: options.janitorEnabled
  PollLease__Janitor__Interval: options.janitorInterval
  PollLease__Janitor__ScanPageSize: options.janitorScanPageSize
  PollLease__Janitor__CleanOrphans: options.janitorCleanOrphans
  PollLease__Janitor__PublishAssignment: options.janitorPublishAssignment
  // PollLease__InstanceId is deliberately absent: every instance generates its own (a shared id would merge them).
}, toObject(range(0, length(httpAllowedHosts)), i => 'PollLease__Http__AllowedHosts__${i}', i => httpAllowedHosts[i]), planSettings)

// Flex Consumption takes the runtime from functionAppConfig and refuses these; Premium and Consumption need them, and
// run the app from an Azure Files share whose connection string (a key) comes from Key Vault. The platform cannot
// validate a share through a Key Vault reference, so storage.bicep creates it and validation is skipped.
var planSettings = plan == 'FlexConsumption'
  ? {}
  : {
      FUNCTIONS_EXTENSION_VERSION: '~4'
      FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'
      WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${storageSecretName})'
      WEBSITE_CONTENTSHARE: contentShareName
      WEBSITE_SKIP_CONTENTSHARE_VALIDATION: '1'
    }

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

// The app settings as one object (they hold runtime values: the Application Insights connection string and Key Vault
// references), replacing the app's whole settings collection.
resource functionAppSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}
