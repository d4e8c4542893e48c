// Redis for PollLease, TLS only. Azure Managed Redis (Microsoft.Cache/redisEnterprise, port 10000) or Azure Cache for
// Redis (Microsoft.Cache/redis, port 6380). All PollLease keys share one hash tag, so the clustered database works.
param location string
param redisName string
@allowed([
  'ManagedRedis'
  'CacheForRedis'
])
param redisKind string
@allowed([
  'ManagedIdentity'
  'AccessKey'
])
param redisAuthentication string
param managedRedisSku string
param cacheForRedisSku string

var managed = redisKind == 'ManagedRedis'

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-04-01' = if (managed) {
  name: redisName
  location: location
  sku: {
    name: managedRedisSku
  }
  properties: {
    minimumTlsVersion: '1.2'
  }
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' = if (managed) {
  parent: managedRedis
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    // One endpoint that proxies to the shards; PollLease's multi-key scripts stay within one hash slot.
    clusteringPolicy: 'EnterpriseCluster'
    // Leases and fences must never be evicted to make room.
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: redisAuthentication == 'AccessKey' ? 'Enabled' : 'Disabled'
  }
}

resource cacheForRedis 'Microsoft.Cache/redis@2024-11-01' = if (!managed) {
  name: redisName
  location: location
  properties: {
    sku: {
      name: cacheForRedisSku
      family: 'C'
      capacity: 0
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    disableAccessKeyAuthentication: redisAuthentication != 'AccessKey'
    redisConfiguration: {
      'aad-enabled': 'true'
      'maxmemory-policy': 'noeviction'
    }
  }
}

output redisName string = redisName
output hostName string = managed ? managedRedis!.properties.hostName : cacheForRedis!.properties.hostName
output port int = managed ? 10000 : 6380
