// Entra ID data access to Redis for the function app's system-assigned identity (redisAuthentication ManagedIdentity).
param redisName string
@allowed([
  'ManagedRedis'
  'CacheForRedis'
])
param redisKind string
param principalId string

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-04-01' existing = if (redisKind == 'ManagedRedis') {
  name: redisName
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' existing = if (redisKind == 'ManagedRedis') {
  parent: managedRedis
  name: 'default'
}

resource managedRedisAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-04-01' = if (redisKind == 'ManagedRedis') {
  parent: managedRedisDatabase
  name: take(replace(guid(redisName, principalId), '-', ''), 60)
  properties: {
    accessPolicyName: 'default'
    user: {
      objectId: principalId
    }
  }
}

resource cacheForRedis 'Microsoft.Cache/redis@2024-11-01' existing = if (redisKind == 'CacheForRedis') {
  name: redisName
}

resource cacheForRedisAccess 'Microsoft.Cache/redis/accessPolicyAssignments@2024-11-01' = if (redisKind == 'CacheForRedis') {
  parent: cacheForRedis
  name: 'polllease-app'
  properties: {
    // Data Owner: all keys and all pub/sub channels (PollLease publishes fleet events on {prefix}:events).
    accessPolicyName: 'Data Owner'
    objectId: principalId
    objectIdAlias: 'polllease-app'
  }
}
