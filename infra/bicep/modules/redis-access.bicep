// Entra ID data access to Redis for the function app's system-assigned identity (redisAuthentication ManagedIdentity).

import { redisKind } from '../types.bicep'

@description('Redis resource name.')
param redisName string

@description('Which Redis.')
param kind redisKind

@description('The function app whose identity gets access.')
param functionAppName string

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = if (kind == 'ManagedRedis') {
  name: redisName
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' existing = if (kind == 'ManagedRedis') {
  parent: managedRedis
  name: 'default'
}

resource managedRedisAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = if (kind == 'ManagedRedis') {
  parent: managedRedisDatabase
  name: take(replace(guid(redisName, functionApp.id), '-', ''), 60)
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: functionApp.identity.principalId
    }
  }
}

resource cacheForRedis 'Microsoft.Cache/redis@2024-11-01' existing = if (kind == 'CacheForRedis') {
  name: redisName
}

resource cacheForRedisAccess 'Microsoft.Cache/redis/accessPolicyAssignments@2024-11-01' = if (kind == 'CacheForRedis') {
  parent: cacheForRedis
  name: 'polllease-app'
  properties: {
    // Data Owner: all keys and all pub/sub channels (PollLease publishes fleet events on {prefix}:events).
    accessPolicyName: 'Data Owner'
    objectId: functionApp.identity.principalId
    objectIdAlias: 'polllease-app'
  }
}
