// Redis for PollLease, TLS only. Azure Managed Redis (Microsoft.Cache/redisEnterprise, port 10000) is the default;
// Azure Cache for Redis (Microsoft.Cache/redis, port 6380) is legacy: it is being retired, so choose it only for an
// existing cache's tier. All PollLease keys of a fleet share one hash tag, so the clustered database works.

import { redisKind, redisAuthentication } from '../types.bicep'

@description('Region.')
param location string

@description('Redis resource name.')
param redisName string

@description('Which Redis.')
param kind redisKind

@description('How the app authenticates (key authentication is disabled with ManagedIdentity).')
param authentication redisAuthentication

@description('Azure Managed Redis SKU.')
param managedRedisSku string

@description('Azure Cache for Redis SKU name, family C (legacy).')
param cacheForRedisSku string

var managed = kind == 'ManagedRedis'

resource managedRedis 'Microsoft.Cache/redisEnterprise@2025-07-01' = if (managed) {
  name: redisName
  location: location
  sku: {
    name: managedRedisSku
  }
  properties: {
    minimumTlsVersion: '1.2'
    // Reached over TLS with Entra ID or a key; a deployment with private networking would set Disabled and add an
    // endpoint.
    publicNetworkAccess: 'Enabled'
  }
}

resource managedRedisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = if (managed) {
  parent: managedRedis
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    // One endpoint that proxies to the shards; PollLease's multi-key scripts stay within one hash slot.
    clusteringPolicy: 'EnterpriseCluster'
    // Leases and fences must never be evicted to make room.
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: authentication == 'AccessKey' ? 'Enabled' : 'Disabled'
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
    disableAccessKeyAuthentication: authentication != 'AccessKey'
    redisConfiguration: {
      'aad-enabled': 'true'
      'maxmemory-policy': 'noeviction'
    }
  }
}

@description('Redis host name (no secret).')
output hostName string = managed ? managedRedis!.properties.hostName : cacheForRedis!.properties.hostName
