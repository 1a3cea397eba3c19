package gitproxy

import "strconv"

// ClientSettings are the git configuration entries that point an agent's
// git at Warden's git remote at endpoint (no trailing slash): for each
// host, https://HOST/ rewritten to endpoint/git/HOST/; and, when the
// remote has a push limit (maxPush > 0), git's post buffer set to it and
// announced in PostBufferHeader, so that git probes before a larger push
// and the remote refuses it before it is sent. The credential helper is
// the caller's to add.
func ClientSettings(endpoint string, hosts []string, maxPush int64) [][2]string {
	base := endpoint + PathPrefix
	var settings [][2]string
	for _, host := range hosts {
		settings = append(settings, [2]string{"url." + base + host + "/.insteadOf", "https://" + host + "/"})
	}
	if maxPush > 0 {
		n := strconv.FormatInt(maxPush, 10)
		settings = append(settings,
			[2]string{"http." + base + ".postBuffer", n},
			[2]string{"http." + base + ".extraHeader", PostBufferHeader + ": " + n})
	}
	return settings
}
