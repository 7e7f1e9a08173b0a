// Runs first in <body>: lets GOV.UK Frontend's styles know scripts run (its template does this inline,
// which our Content-Security-Policy forbids).
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
