package e2e

import (
	"strings"
	"testing"
)

// TestZZLogsHoldNoSecrets reads the whole log after every other test (tests
// run in file order, and this file sorts last).
func TestZZLogsHoldNoSecrets(t *testing.T) {
	b := theBridge(t)
	logs := b.logs.String()
	if !strings.Contains(logs, `"method":"PROPFIND"`) || !strings.Contains(logs, `"user":"admin"`) {
		t.Fatalf("request log lines missing:\n%.2000s", logs)
	}
	for _, secret := range append([]string{adminPass, readerPass, limitedPass, "Basic ", "Authorization", "sig="}, providerSecrets...) {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}
