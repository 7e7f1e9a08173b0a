"""Cloud connectors: sign in with msal, read Microsoft Graph and Azure Resource Manager with requests,
and judge the cloud policies (policies/microsoft365.yaml, policies/azure.yaml) like any other policy."""
