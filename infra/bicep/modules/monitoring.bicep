// Log Analytics workspace and a workspace-based Application Insights component that accepts Entra ID (Microsoft Entra)
// authenticated ingestion only: no instrumentation key alone can write to it.

@description('Region.')
param location string

@description('Log Analytics workspace name.')
param workspaceName string

@description('Application Insights component name.')
param applicationInsightsName string

@description('Log Analytics retention in days.')
param retentionInDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: workspaceName
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    // Entra ID only: the app's identity gets Monitoring Metrics Publisher (modules/functionapp.bicep) and sends with
    // APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD.
    DisableLocalAuth: true
  }
}
