// An Application Insights workbook: leases per instance, failovers and lease losses, poll latency over time.
param location string
param applicationInsightsId string
param displayName string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(applicationInsightsId, 'polllease-workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: loadTextContent('../../workbook/polllease.workbook.json')
  }
}

output workbookId string = workbook.id
