// An Application Insights workbook: leases per instance, failovers and lease losses, poll latency over time. Its
// fallback resource is the Application Insights component, so it also works when opened from the workbook gallery.

@description('Region.')
param location string

@description('Application Insights component the workbook queries.')
param applicationInsightsName string

@description('Display name.')
param displayName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var content = union(loadJsonContent('../../workbook/polllease.workbook.json'), {
  fallbackResourceIds: [
    applicationInsights.id
  ]
})

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsights.id, 'polllease-workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsights.id
    serializedData: string(content)
  }
}

@description('Workbook resource id.')
output workbookId string = workbook.id
