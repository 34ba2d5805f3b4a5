package fakemounts

import (
	disccloudfake "bridge/tests/fakes/disccloud"
	"bridge/tests/fakes/faults"
)

// startDisccloud serves the DiscCloud (YetiShare) fake; its mount options
// carry the account's two API keys, with which the driver authorizes by
// itself. The fake keeps file content in a temp folder until Close.
func startDisccloud(baseURL string, cfg faults.Config) (Started, error) {
	f := disccloudfake.New()
	f.Faults.SetConfig(cfg)
	f.SetBaseURL(baseURL)
	// A paid package, as a bridge's user has: files past 4 GiB (the
	// benchmark's 5 GiB one) fit. The fake's own default, 1 GiB, is what
	// its tests of the 413 path use.
	f.SetPackage(16<<30, 64<<30, 4)
	return Started{Handler: f.Handler(), Options: map[string]any{
		"api_base": f.APIBase(),
		"key1":     f.Key1,
		"key2":     f.Key2,
	}, Close: func() { f.Close() }}, nil
}
