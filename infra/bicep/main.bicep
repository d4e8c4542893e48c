// PollLease on Azure: a Flex Consumption (FC1, Linux) Function App running src/PollFunctions (.NET 10 isolated),
// its storage (identity-based AzureWebJobsStorage + deployment container), Log Analytics + workspace-based
// Application Insights with a PollLease workbook, and Redis (Azure Managed Redis or Azure Cache for Redis).
// Deploy: see infra/README.md.
targetScope = 'resourceGroup'

@description('Short name used to derive resource names (letters and digits).')
@minLength(3)
@maxLength(12)
param appName string = 'polllease'

@description('Region for every resource (Flex Consumption must be available there).')
param location string = resourceGroup().location

@description('Which Redis to create: Azure Managed Redis (port 10000) or Azure Cache for Redis (port 6380). TLS only.')
@allowed([
  'ManagedRedis'
  'CacheForRedis'
])
param redisKind string = 'ManagedRedis'

@description('How the app authenticates to Redis: its system-assigned identity (Entra ID, no key anywhere) or an access key placed in the PollLease__Redis app setting.')
@allowed([
  'ManagedIdentity'
  'AccessKey'
])
param redisAuthentication string = 'ManagedIdentity'

@description('Azure Managed Redis SKU (redisKind ManagedRedis).')
param managedRedisSku string = 'Balanced_B0'

@description('Azure Cache for Redis SKU name, family C (redisKind CacheForRedis).')
@allowed([
  'Basic'
  'Standard'
])
param cacheForRedisSku string = 'Standard'

@description('Instances kept running at all times: each one is a poller (the hosted service runs in every instance). The fleet size.')
@minValue(1)
@maxValue(100)
param alwaysReadyInstances int = 2

@description('Upper bound for Flex Consumption scale-out.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance (Flex Consumption sizes).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Six-field NCRONTAB (UTC) of the lease and poll timer functions (app setting PollLeaseTimerSchedule).')
param timerSchedule string = '*/10 * * * * *'

@description('PollLease options (section PollLease); any key given here overrides the default in modules/functionapp.bicep.')
param pollLease object = {}

@description('Hosts the http poll handler may fetch (PollLease:Http:AllowedHosts; exact or *.domain).')
param httpAllowedHosts array = []

@description('Log Analytics retention in days.')
param logRetentionDays int = 30

var token = toLower(uniqueString(resourceGroup().id, appName))
var functionAppName = 'func-${appName}-${token}'
var deploymentContainerName = 'app-package-${take(appName, 20)}-${take(token, 7)}'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    workspaceName: 'log-${appName}-${token}'
    applicationInsightsName: 'appi-${appName}-${token}'
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageAccountName: take('st${replace(appName, '-', '')}${token}', 24)
    deploymentContainerName: deploymentContainerName
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    location: location
    redisName: 'redis-${appName}-${token}'
    redisKind: redisKind
    redisAuthentication: redisAuthentication
    managedRedisSku: managedRedisSku
    cacheForRedisSku: cacheForRedisSku
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    planName: 'plan-${appName}-${token}'
    functionAppName: functionAppName
    storageAccountName: storage.outputs.storageAccountName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    redisKind: redisKind
    redisName: redis.outputs.redisName
    redisHostName: redis.outputs.hostName
    redisPort: redis.outputs.port
    redisAuthentication: redisAuthentication
    alwaysReadyInstances: alwaysReadyInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    timerSchedule: timerSchedule
    pollLease: pollLease
    httpAllowedHosts: httpAllowedHosts
  }
}

module redisAccess 'modules/redis-access.bicep' = if (redisAuthentication == 'ManagedIdentity') {
  name: 'redis-access'
  params: {
    redisKind: redisKind
    redisName: redis.outputs.redisName
    principalId: functionApp.outputs.principalId
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    location: location
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    displayName: 'PollLease (${appName})'
  }
}

@description('Function app name, for `func azure functionapp publish`.')
output functionAppName string = functionAppName

@description('Default host name of the function app.')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Principal id of the app\'s system-assigned identity.')
output functionAppPrincipalId string = functionApp.outputs.principalId

@description('Application Insights resource (logs, customMetrics).')
output applicationInsightsName string = monitoring.outputs.applicationInsightsName

@description('Log Analytics workspace.')
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName

@description('Redis host and TLS port (no secret).')
output redisEndpoint string = '${redis.outputs.hostName}:${redis.outputs.port}'

@description('Storage account behind AzureWebJobsStorage (identity-based).')
output storageAccountName string = storage.outputs.storageAccountName

@description('Workbook resource id.')
output workbookId string = workbook.outputs.workbookId
