package hooks

import "testing"

// FuzzDecode feeds arbitrary bytes to the hook decoder and the request
// builder: no panic, and every refusal is ErrBadInput.
func FuzzDecode(f *testing.F) {
	for _, s := range samples(f) {
		f.Add(s)
	}
	f.Add([]byte(`{"hook_event_name":"PreToolUse","tool_name":"exec_command","tool_input":{"cmd":["a",1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := Decode(data)
		if err != nil {
			return
		}
		in.Request()
	})
}
