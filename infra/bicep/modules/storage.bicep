// The storage account behind AzureWebJobsStorage (timer schedules and singleton locks live here), the blob container
// Flex Consumption deploys the app package from, and, on Premium and Consumption, the Azure Files share those plans run
// the app from. Flex needs no key at all; the other plans mount the share with a connection string, kept in Key Vault.

import { hostingPlan } from '../types.bicep'

@description('Region.')
param location string

@description('Storage account name (lower case, 3-24 letters and digits).')
param storageAccountName string

@description('Blob container of the Flex Consumption deployment package.')
param deploymentContainerName string

@description('Azure Files share of the app content (Premium and Consumption).')
param contentShareName string

@description('The hosting plan.')
param plan hostingPlan

var flex = plan == 'FlexConsumption'

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Azure Files content shares are mounted with the account key; nothing else uses it.
    allowSharedKeyAccess: !flex
    defaultToOAuthAuthentication: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = if (flex) {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2025-06-01' = if (!flex) {
  parent: storage
  name: 'default'
}

// Created here because the app's content settings come from Key Vault, and the platform cannot check (or create) a
// share through a Key Vault reference (WEBSITE_SKIP_CONTENTSHARE_VALIDATION=1).
resource contentShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2025-06-01' = if (!flex) {
  parent: fileService
  name: contentShareName
}

@description('Blob endpoint of the deployment container (Flex Consumption).')
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
