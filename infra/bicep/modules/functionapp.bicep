// The Flex Consumption plan and Function App (Linux, dotnet-isolated 10.0, system-assigned identity), its storage
// role assignments, and every app setting PollLease reads. tests/PollLease.Tests/Hosting/AzureConfigurationTests.cs
// checks that each configuration key the code binds is set in `appSettings` below.
param location string
param planName string
param functionAppName string
param storageAccountName string
param deploymentContainerUrl string
param applicationInsightsName string
@allowed([
  'ManagedRedis'
  'CacheForRedis'
])
param redisKind string
param redisName string
param redisHostName string
param redisPort int
@allowed([
  'ManagedIdentity'
  'AccessKey'
])
param redisAuthentication string
param alwaysReadyInstances int
param maximumInstanceCount int
param instanceMemoryMB int
param timerSchedule string
param pollLease object
param httpAllowedHosts array

// PollLease defaults (README "Options"); `pollLease` overrides any of them.
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

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-04-01' existing = if (redisKind == 'ManagedRedis') {
  name: redisName
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' existing = if (redisKind == 'ManagedRedis') {
  parent: managedRedis
  name: 'default'
}

resource cacheForRedis 'Microsoft.Cache/redis@2024-11-01' existing = if (redisKind == 'CacheForRedis') {
  name: redisName
}

// ARM evaluates only the branch of a condition it returns, so listKeys runs only on the Redis that exists, and only
// with key authentication. With ManagedIdentity the setting holds no secret.
var redisEndpoint = '${redisHostName}:${redisPort},ssl=true,abortConnect=false'
var redisConnection = redisAuthentication == 'AccessKey'
  ? '${redisEndpoint},password=${redisKind == 'ManagedRedis' ? managedRedisDatabase!.listKeys().primaryKey : cacheForRedis!.listKeys().primaryKey}'
  : redisEndpoint

var appSettings = union({
  // Identity-based host storage (timers keep their schedule and singleton locks here).
  AzureWebJobsStorage__accountName: storage.name
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  // Worker log levels (host.json governs the host's): PollLease lines at Information, the rest at Warning.
  Logging__LogLevel__Default: 'Warning'
  Logging__LogLevel__PollLease: 'Information'
  PollLeaseTimerSchedule: timerSchedule
  PollFunctions__RedisAuthentication: redisAuthentication
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
}, toObject(range(0, length(httpAllowedHosts)), i => 'PollLease__Http__AllowedHosts__${i}', i => string(httpAllowedHosts[i])))

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        // Every running instance is a poller (its hosted service renews and polls its share), so the fleet is
        // the always-ready instances of the lease function's scale group, not whatever a timer happens to wake.
        alwaysReady: [
          {
            name: 'function:lease'
            instanceCount: alwaysReadyInstances
          }
        ]
      }
      runtime: {
        name: 'dotnet-isolated'
        version: '10.0'
      }
    }
  }
}

// The app settings as one object (they hold runtime values: the storage name, the Application Insights connection
// string and, with AccessKey, the Redis key), replacing the app's whole settings collection.
resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
}

// Blob (deployment package, timer schedule and singleton locks), queue and table access for the host's storage.
var storageRoles = {
  blobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  queueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  tableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource storageRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(storageRoles): {
  name: guid(storage.id, functionApp.id, role.value)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}]

output principalId string = functionApp.identity.principalId
output defaultHostName string = functionApp.properties.defaultHostName
