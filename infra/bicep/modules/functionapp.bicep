// The hosting plan and the Function App (.NET 10 isolated, system-assigned identity) for the chosen `plan`, and the
// identity's roles on the host storage and on Application Insights. The app settings are in appsettings.bicep, applied
// once the identity can read Key Vault.

import { hostingPlan } from '../types.bicep'

@description('Region.')
param location string

@description('The hosting plan.')
param plan hostingPlan

@description('Plan (server farm) name.')
param planName string

@description('Function app name.')
param functionAppName string

@description('Storage account behind AzureWebJobsStorage.')
param storageAccountName string

@description('Blob container URL of the Flex Consumption deployment package.')
param deploymentContainerUrl string

@description('Application Insights component the app sends to (Entra ID only).')
param applicationInsightsName string

@description('Flex Consumption: always-ready instances of the lease function (the fleet size).')
param alwaysReadyInstances int

@description('Premium: minimum instances kept running (the fleet size).')
param minimumInstances int

@description('Flex Consumption: scale-out bound; Premium: maximum elastic workers.')
param maximumInstanceCount int

@description('Flex Consumption: memory per instance in MB.')
param instanceMemoryMB int

var flex = plan == 'FlexConsumption'
var premium = plan == 'Premium'

var planSkus = {
  FlexConsumption: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  Premium: {
    tier: 'ElasticPremium'
    name: 'EP1'
  }
  Consumption: {
    tier: 'Dynamic'
    name: 'Y1'
  }
}

resource hostingPlanResource 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  kind: premium ? 'elastic' : 'functionapp'
  sku: planSkus[plan]
  properties: {
    // Linux for Flex and Premium; Windows for Consumption, where .NET 10 isolated runs (Linux Consumption stops at 9).
    reserved: plan != 'Consumption'
    maximumElasticWorkerCount: premium ? maximumInstanceCount : null
  }
}

var siteConfigs = {
  FlexConsumption: {
    minTlsVersion: '1.2'
    ftpsState: 'Disabled'
  }
  Premium: {
    minTlsVersion: '1.2'
    ftpsState: 'Disabled'
    linuxFxVersion: 'DOTNET-ISOLATED|10.0'
    // A timer-only app never scales out by load: this is the fleet.
    minimumElasticInstanceCount: minimumInstances
  }
  Consumption: {
    minTlsVersion: '1.2'
    ftpsState: 'Disabled'
    netFrameworkVersion: 'v10.0'
    use32BitWorkerProcess: false
  }
}

resource functionApp 'Microsoft.Web/sites@2025-03-01' = {
  name: functionAppName
  location: location
  kind: plan == 'Consumption' ? 'functionapp' : 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: hostingPlanResource.id
    httpsOnly: true
    siteConfig: siteConfigs[plan]
    functionAppConfig: flex
      ? {
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
            // Every running instance is a poller (its hosted service renews and polls its share). The app's only
            // non-HTTP function is `lease`, so its group's always-ready instances are the fleet, and nothing else
            // brings up instances that would join it.
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
      : null
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
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

// Application Insights takes Entra ID authenticated telemetry only (DisableLocalAuth): this role lets the app send it.
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, functionApp.id, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Principal id of the app\'s system-assigned identity.')
output principalId string = functionApp.identity.principalId

@description('Default host name of the function app.')
output defaultHostName string = functionApp.properties.defaultHostName
