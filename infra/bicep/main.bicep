// PollLease on Azure: a Function App running src/PollFunctions (.NET 10 isolated) on the plan chosen by `plan`
// (Flex Consumption by default, Elastic Premium EP1, or Consumption on Windows), its storage, Log Analytics +
// workspace-based Application Insights (Entra ID ingestion only) with a PollLease workbook, Redis (Azure Managed Redis
// by default; Azure Cache for Redis is legacy), and a Key Vault for any key the app needs. Deploy: see infra/README.md.
targetScope = 'resourceGroup'

import { hostingPlan, redisKind as redisKindType, redisAuthentication as redisAuthenticationType, pollLeaseOverrides } from 'types.bicep'

@description('Short name used to derive resource names (letters, digits and hyphens; derived names are lower-cased).')
@minLength(3)
@maxLength(12)
param appName string = 'polllease'

@description('Region for every resource (the plan and the Redis must be available there).')
param location string = resourceGroup().location

@description('Hosting plan: FlexConsumption (FC1, Linux, default), Premium (EP1, Linux; warmup fires on scale-out) or Consumption (Y1, Windows: .NET 10 isolated runs on Windows Consumption, not on Linux Consumption).')
param plan hostingPlan = 'FlexConsumption'

@description('Which Redis to create: Azure Managed Redis (default, port 10000) or Azure Cache for Redis (legacy, being retired; port 6380). TLS only.')
param redisKind redisKindType = 'ManagedRedis'

@description('How the app authenticates to Redis: its system-assigned identity (Entra ID, no key anywhere) or an access key kept in Key Vault and referenced from the PollLease__Redis app setting.')
param redisAuthentication redisAuthenticationType = 'ManagedIdentity'

@description('Azure Managed Redis SKU (redisKind ManagedRedis).')
param managedRedisSku string = 'Balanced_B0'

@description('Azure Cache for Redis SKU name, family C (redisKind CacheForRedis, legacy).')
@allowed([
  'Basic'
  'Standard'
])
param cacheForRedisSku string = 'Standard'

@description('FlexConsumption: always-ready instances of the lease function. Each one is a poller (the hosted service runs in every instance): the fleet size.')
@minValue(1)
@maxValue(100)
param alwaysReadyInstances int = 2

@description('Premium: minimum instances kept running (minimumElasticInstanceCount). Each one is a poller: the fleet size.')
@minValue(1)
@maxValue(20)
param minimumInstances int = 2

@description('FlexConsumption: scale-out bound. Premium: maximum elastic workers (at least minimumInstances).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('FlexConsumption: memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Six-field NCRONTAB (UTC) of the lease timer function (app setting PollLeaseTimerSchedule).')
param timerSchedule string = '*/10 * * * * *'

@description('PollLease options (section PollLease); any key given here overrides the default in modules/appsettings.bicep.')
param pollLease pollLeaseOverrides = {}

@description('Hosts the http poll handler may fetch (PollLease:Http:AllowedHosts; exact or *.domain).')
param httpAllowedHosts string[] = []

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// Storage account, container, share and Key Vault names accept lower case only; every derived name is lower-cased.
var name = toLower(appName)
var compactName = replace(name, '-', '')
var token = toLower(uniqueString(resourceGroup().id, appName))
var functionAppName = 'func-${name}-${token}'
var storageAccountName = take('st${compactName}${token}', 24)
var keyVaultName = take('kv${compactName}${token}', 24)
var applicationInsightsName = 'appi-${name}-${token}'
var redisName = 'redis-${name}-${token}'
var deploymentContainerName = 'app-package-${take(compactName, 20)}-${take(token, 7)}'
var contentShareName = take('${compactName}-${token}', 63)
var storageSecretName = 'storage-content-connection'
var redisSecretName = 'redis-connection'
var redisPort = redisKind == 'ManagedRedis' ? 10000 : 6380
// Key Vault exists only when there is a key to keep.
var needsKeyVault = plan != 'FlexConsumption' || redisAuthentication == 'AccessKey'

module monitoring 'modules/monitoring.bicep' = {
  params: {
    location: location
    workspaceName: 'log-${name}-${token}'
    applicationInsightsName: applicationInsightsName
    retentionInDays: logRetentionDays
  }
}

module storage 'modules/storage.bicep' = {
  params: {
    location: location
    storageAccountName: storageAccountName
    deploymentContainerName: deploymentContainerName
    contentShareName: contentShareName
    plan: plan
  }
}

module redis 'modules/redis.bicep' = {
  params: {
    location: location
    redisName: redisName
    kind: redisKind
    authentication: redisAuthentication
    managedRedisSku: managedRedisSku
    cacheForRedisSku: cacheForRedisSku
  }
}

module functionApp 'modules/functionapp.bicep' = {
  params: {
    location: location
    plan: plan
    planName: 'plan-${name}-${token}'
    functionAppName: functionAppName
    storageAccountName: storageAccountName
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    applicationInsightsName: applicationInsightsName
    alwaysReadyInstances: alwaysReadyInstances
    minimumInstances: minimumInstances
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    monitoring
  ]
}

module keyVault 'modules/keyvault.bicep' = if (needsKeyVault) {
  params: {
    location: location
    keyVaultName: keyVaultName
    plan: plan
    storageAccountName: storageAccountName
    redisName: redisName
    kind: redisKind
    authentication: redisAuthentication
    redisEndpoint: '${redis.outputs.hostName}:${redisPort}'
    functionAppName: functionAppName
    storageSecretName: storageSecretName
    redisSecretName: redisSecretName
  }
  dependsOn: [
    storage
    functionApp
  ]
}

module redisAccess 'modules/redis-access.bicep' = if (redisAuthentication == 'ManagedIdentity') {
  params: {
    redisName: redisName
    kind: redisKind
    functionAppName: functionAppName
  }
  dependsOn: [
    redis
    functionApp
  ]
}

// Last: the settings refer to Key Vault secrets, which the identity can read only once keyVault has run.
module appSettings 'modules/appsettings.bicep' = {
  params: {
    functionAppName: functionAppName
    plan: plan
    storageAccountName: storageAccountName
    applicationInsightsName: applicationInsightsName
    redisEndpoint: '${redis.outputs.hostName}:${redisPort}'
    authentication: redisAuthentication
    keyVaultName: keyVaultName
    storageSecretName: storageSecretName
    redisSecretName: redisSecretName
    contentShareName: contentShareName
    timerSchedule: timerSchedule
    pollLease: pollLease
    httpAllowedHosts: httpAllowedHosts
  }
  dependsOn: [
    monitoring
    functionApp
    keyVault
  ]
}

module workbook 'modules/workbook.bicep' = {
  params: {
    location: location
    applicationInsightsName: applicationInsightsName
    displayName: 'PollLease (${appName})'
  }
  dependsOn: [
    monitoring
  ]
}

@description('Function app name, for `func azure functionapp publish`.')
output functionAppName string = functionAppName

@description('Default host name of the function app.')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Principal id of the app\'s system-assigned identity.')
output functionAppPrincipalId string = functionApp.outputs.principalId

@description('Application Insights resource (logs, customMetrics).')
output applicationInsightsName string = applicationInsightsName

@description('Log Analytics workspace.')
output logAnalyticsWorkspaceName string = 'log-${name}-${token}'

@description('Redis host and TLS port (no secret).')
output redisEndpoint string = '${redis.outputs.hostName}:${redisPort}'

@description('Storage account behind AzureWebJobsStorage (identity-based).')
output storageAccountName string = storageAccountName

@description('Key Vault holding the keys, or empty when none is needed.')
output keyVaultName string = needsKeyVault ? keyVaultName : ''

@description('Workbook resource id.')
output workbookId string = workbook.outputs.workbookId
