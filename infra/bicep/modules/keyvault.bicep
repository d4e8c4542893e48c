// The Key Vault holding every key the app needs, and read access to it for the app's identity. App settings refer to
// the secrets (@Microsoft.KeyVault(...)); no key is ever written into an app setting. Deployed only when there is a
// key: the Azure Files connection string of Premium and Consumption, and the Redis key with redisAuthentication=AccessKey.

import { hostingPlan, redisKind, redisAuthentication } from '../types.bicep'

@description('Region.')
param location string

@description('Key Vault name (3-24 letters, digits and hyphens).')
param keyVaultName string

@description('The hosting plan (Premium and Consumption need the content share connection string).')
param plan hostingPlan

@description('Storage account behind the content share.')
param storageAccountName string

@description('Redis resource name.')
param redisName string

@description('Which Redis.')
param kind redisKind

@description('How the app authenticates to Redis.')
param authentication redisAuthentication

@description('Redis host name and TLS port, for the connection string secret.')
param redisEndpoint string

@description('The function app whose identity reads the secrets.')
param functionAppName string

@description('Secret holding the Azure Files connection string.')
param storageSecretName string

@description('Secret holding the Redis connection string with its key.')
param redisSecretName string

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: keyVaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    publicNetworkAccess: 'Enabled'
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource storageSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (plan != 'FlexConsumption') {
  parent: vault
  name: storageSecretName
  properties: {
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
    contentType: 'Azure Storage connection string (app content share)'
  }
}

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = if (kind == 'ManagedRedis') {
  name: redisName
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' existing = if (kind == 'ManagedRedis') {
  parent: managedRedis
  name: 'default'
}

resource cacheForRedis 'Microsoft.Cache/redis@2024-11-01' existing = if (kind == 'CacheForRedis') {
  name: redisName
}

// ARM evaluates only the branch of a condition it returns, so listKeys runs only on the Redis that exists.
resource redisSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (authentication == 'AccessKey') {
  parent: vault
  name: redisSecretName
  properties: {
    value: '${redisEndpoint},ssl=true,abortConnect=false,password=${kind == 'ManagedRedis' ? managedRedisDatabase!.listKeys().primaryKey : cacheForRedis!.listKeys().primaryKey}'
    contentType: 'StackExchange.Redis connection string'
  }
}

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionApp.id, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}
