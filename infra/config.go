package main

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Functions are the Lambda functions of the stack, by the name of their
// folder under functions/ and under the functions directory.
var Functions = []string{"api", "llm", "archiver", "notifier", "slack", "approvals", "ingest"}

// Config is the stack's configuration: CDK context keys of the same names,
// over a JSON file named by the context key "config", over the defaults.
type Config struct {
	// Stage names the deployment: the stack Warden-<stage>, the secrets
	// under warden/<stage>/, the API's stage.
	Stage string `json:"stage"`
	// ArchiveRetentionDays is the audit archive's Object Lock default
	// retention (COMPLIANCE mode: nobody can shorten it, root included).
	ArchiveRetentionDays int `json:"archiveRetentionDays"`
	// Slack adds the Slack app's secrets. The slack function is deployed
	// either way: without its secrets it refuses every request.
	Slack bool `json:"slack"`
	// BedrockModels are the Bedrock model IDs (or cross-region inference
	// profile IDs) the llm function may invoke; none, no Bedrock permission.
	BedrockModels []string `json:"bedrockModels"`
	// FunctionsDir holds <name>/bootstrap for each function; a relative
	// path is taken from infra/.
	FunctionsDir string `json:"functionsDir"`
	// LogRetentionDays is the retention of the functions' and the API's
	// log groups, one of CloudWatch Logs' allowed values.
	LogRetentionDays int `json:"logRetentionDays"`
	// AlarmEmail, if set, is subscribed to the alarm topic.
	AlarmEmail string `json:"alarmEmail"`
	// ThrottleRateLimit and ThrottleBurstLimit are the API stage's default
	// method throttling (requests per second, burst).
	ThrottleRateLimit  float64 `json:"throttleRateLimit"`
	ThrottleBurstLimit int     `json:"throttleBurstLimit"`
	// APIGatewayCloudWatchRole creates the account's (per region) role
	// that API Gateway writes logs with. Access logging needs it; turn it
	// off where the account already has one.
	APIGatewayCloudWatchRole bool `json:"apiGatewayCloudWatchRole"`
	// AgentPolicyARNs are the IAM managed policies attached to the agent
	// runtime role: the most an agent's credentials may ever do (each
	// session policy the broker compiles from the Warden policy only
	// narrows them). None, and the credentials can do nothing.
	AgentPolicyARNs []string `json:"agentPolicyArns"`
}

// DefaultConfig is the configuration with no key set.
func DefaultConfig() Config {
	return Config{
		Stage:                    "dev",
		ArchiveRetentionDays:     365,
		FunctionsDir:             filepath.Join("..", "build", "functions"),
		LogRetentionDays:         90,
		ThrottleRateLimit:        50,
		ThrottleBurstLimit:       100,
		APIGatewayCloudWatchRole: true,
	}
}

// ConfigFileKey is the context key that names a JSON configuration file.
const ConfigFileKey = "config"

// configKey is a configuration key and how to set it.
type configKey struct {
	name string
	set  func(c *Config, v any) error
}

// configKeys are the keys, each with how to set it from a context or JSON
// value: a context value given with -c key=value is a string; one from
// cdk.json, CDK_CONTEXT_JSON or the file may be typed.
var configKeys = []configKey{
	{"stage", func(c *Config, v any) (err error) { c.Stage, err = asString(v); return err }},
	{"archiveRetentionDays", func(c *Config, v any) (err error) { c.ArchiveRetentionDays, err = asInt(v); return err }},
	{"slack", func(c *Config, v any) (err error) { c.Slack, err = asBool(v); return err }},
	{"bedrockModels", func(c *Config, v any) (err error) { c.BedrockModels, err = asList(v); return err }},
	{"functionsDir", func(c *Config, v any) (err error) { c.FunctionsDir, err = asString(v); return err }},
	{"logRetentionDays", func(c *Config, v any) (err error) { c.LogRetentionDays, err = asInt(v); return err }},
	{"alarmEmail", func(c *Config, v any) (err error) { c.AlarmEmail, err = asString(v); return err }},
	{"throttleRateLimit", func(c *Config, v any) (err error) { c.ThrottleRateLimit, err = asFloat(v); return err }},
	{"throttleBurstLimit", func(c *Config, v any) (err error) { c.ThrottleBurstLimit, err = asInt(v); return err }},
	{"apiGatewayCloudWatchRole", func(c *Config, v any) (err error) { c.APIGatewayCloudWatchRole, err = asBool(v); return err }},
	{"agentPolicyArns", func(c *Config, v any) (err error) { c.AgentPolicyARNs, err = asList(v); return err }},
}

// LoadConfig reads the configuration through context (a construct node's
// TryGetContext: nil for an unset key), then validates it. Every problem
// is reported, one a line.
func LoadConfig(context func(key string) any) (Config, error) {
	c := DefaultConfig()
	var errs []error
	if v := context(ConfigFileKey); v != nil {
		name, err := asString(v)
		if err == nil {
			err = c.applyFile(name)
		}
		if err != nil {
			return c, fmt.Errorf("warden config: %s: %w", ConfigFileKey, err)
		}
	}
	for _, k := range configKeys {
		if v := context(k.name); v != nil {
			if err := k.set(&c, v); err != nil {
				errs = append(errs, fmt.Errorf("%s (context): %w", k.name, err))
			}
		}
	}
	if len(errs) == 0 {
		errs = c.validate()
	}
	if len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, err := range errs {
			msgs[i] = "warden config: " + err.Error()
		}
		return c, errors.New(strings.Join(msgs, "\n"))
	}
	return c, nil
}

// applyFile sets the keys the JSON object in file name holds; a key it
// does not know is an error (a misspelt key would otherwise be a default
// silently kept).
func (c *Config) applyFile(name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("config file %s is not a JSON object: %w", name, err)
	}
	var errs []string
	for key := range m {
		if !slices.ContainsFunc(configKeys, func(k configKey) bool { return k.name == key }) {
			errs = append(errs, fmt.Sprintf("unknown key %q", key))
		}
	}
	for _, k := range configKeys {
		if v, ok := m[k.name]; ok && v != nil {
			if err := k.set(c, v); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", k.name, err))
			}
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return fmt.Errorf("config file %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

var (
	stagePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	// modelIDPattern is a Bedrock model ID (provider.model[-version][:n])
	// or an inference profile ID (<geo>.provider.model...).
	modelIDPattern = regexp.MustCompile(`^[a-z0-9-]+(\.[A-Za-z0-9_-]+)+(-v\d+)?(:[A-Za-z0-9_-]+)*$`)
	// policyARNPattern is an IAM managed policy's ARN: AWS's own
	// (arn:aws:iam::aws:policy/…) or an account's, with an optional path;
	// IAM's characters for policy names and paths, so no wildcard.
	policyARNPattern = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::(aws|[0-9]{12}):policy/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}$`)
	// logRetentions are the retentions CloudWatch Logs accepts, in days.
	logRetentions = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)

// profileGeos are the prefixes of cross-region inference profile IDs.
var profileGeos = []string{"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"}

// MaxAgentPolicies is the most managed policies IAM attaches to a role
// (its quota is 10 by default, and can be raised to 20).
const MaxAgentPolicies = 20

// MaxArchiveRetentionDays is the longest Object Lock retention S3 accepts
// (100 years).
const MaxArchiveRetentionDays = 36500

// validate reports every problem of c.
func (c *Config) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !stagePattern.MatchString(c.Stage) {
		bad("stage %q: use 1 to 20 lower-case letters, digits and hyphens, starting with a letter (it names the stack Warden-<stage>, the secrets warden/<stage>/ and the API stage)", c.Stage)
	}
	if c.ArchiveRetentionDays < 1 || c.ArchiveRetentionDays > MaxArchiveRetentionDays {
		bad("archiveRetentionDays %d: must be 1 to %d (the Object Lock COMPLIANCE retention of every archived object; it cannot be shortened once written)", c.ArchiveRetentionDays, MaxArchiveRetentionDays)
	}
	seen := map[string]bool{}
	for _, id := range c.BedrockModels {
		switch {
		case strings.HasPrefix(id, "arn:"):
			bad("bedrockModels: %q: give the model ID (anthropic.claude-…-v1:0) or inference profile ID (eu.anthropic.…), not an ARN", id)
		case len(id) > 128 || !modelIDPattern.MatchString(id):
			bad("bedrockModels: %q is not a Bedrock model ID such as anthropic.claude-sonnet-4-5-20250929-v1:0 (no wildcards)", id)
		case seen[id]:
			bad("bedrockModels: %q is listed twice", id)
		}
		seen[id] = true
	}
	seen = map[string]bool{}
	for _, arn := range c.AgentPolicyARNs {
		switch {
		case !policyARNPattern.MatchString(arn):
			bad("agentPolicyArns: %q is not an IAM managed policy ARN: use arn:aws:iam::aws:policy/<name> (AWS managed) or arn:aws:iam::<12-digit account ID>:policy/[<path>/]<name> (no wildcards)", arn)
		case seen[arn]:
			bad("agentPolicyArns: %q is listed twice", arn)
		}
		seen[arn] = true
	}
	if n := len(c.AgentPolicyARNs); n > MaxAgentPolicies {
		bad("agentPolicyArns: %d policies: IAM attaches at most %d managed policies to a role (10 unless the account's quota was raised)", n, MaxAgentPolicies)
	}
	if !slices.Contains(logRetentions, c.LogRetentionDays) {
		bad("logRetentionDays %d: CloudWatch Logs accepts only %s", c.LogRetentionDays, joinInts(logRetentions))
	}
	if c.AlarmEmail != "" && (strings.Count(c.AlarmEmail, "@") != 1 || strings.ContainsAny(c.AlarmEmail, " \t\n,;") ||
		strings.HasPrefix(c.AlarmEmail, "@") || strings.HasSuffix(c.AlarmEmail, "@")) {
		bad("alarmEmail %q is not an email address", c.AlarmEmail)
	}
	if !(c.ThrottleRateLimit > 0) || math.IsInf(c.ThrottleRateLimit, 0) {
		bad("throttleRateLimit %v: must be a positive number of requests per second", c.ThrottleRateLimit)
	}
	if c.ThrottleBurstLimit < 1 {
		bad("throttleBurstLimit %d: must be at least 1", c.ThrottleBurstLimit)
	}
	if c.FunctionsDir == "" {
		bad("functionsDir is empty")
	} else {
		errs = append(errs, checkFunctions(c.FunctionsDir)...)
	}
	return errs
}

// checkFunctions reports each function whose bootstrap is missing or is
// not a Linux arm64 executable, the only kind that runs on
// PROVIDED_AL2023 / ARM_64.
func checkFunctions(dir string) []error {
	var errs []error
	for _, name := range Functions {
		path := filepath.Join(dir, name, "bootstrap")
		if err := checkBootstrap(path); err != nil {
			abs, _ := filepath.Abs(path)
			errs = append(errs, fmt.Errorf("function %s: %s %v: run `make functions` first (it builds build/functions/<name>/bootstrap from functions/<name>/main.go)", name, abs, err))
		}
	}
	return errs
}

func checkBootstrap(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("does not exist")
	case err != nil:
		return fmt.Errorf("cannot be read: %w", err)
	case !fi.Mode().IsRegular():
		return errors.New("is not a regular file")
	case fi.Mode().Perm()&0o111 == 0:
		return errors.New("is not executable")
	}
	f, err := elf.Open(path)
	if err != nil {
		return errors.New("is not a Linux (ELF) executable")
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		return fmt.Errorf("is built for %s, not arm64 (the functions run on ARM_64)", strings.TrimPrefix(f.Machine.String(), "EM_"))
	}
	return nil
}

// IsInferenceProfile reports whether a Bedrock model ID is a cross-region
// inference profile (eu.anthropic.claude-…): a geography, then a model ID.
func IsInferenceProfile(id string) bool {
	geo, rest, ok := strings.Cut(id, ".")
	return ok && strings.Contains(rest, ".") && slices.Contains(profileGeos, geo)
}

func asString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("want a string, not %s", describe(v))
	}
	return strings.TrimSpace(s), nil
}

func asBool(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return false, fmt.Errorf("want true or false, not %q", v)
		}
		return b, nil
	}
	return false, fmt.Errorf("want true or false, not %s", describe(v))
}

func asFloat(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("want a number, not %q", v)
		}
		return f, nil
	}
	return 0, fmt.Errorf("want a number, not %s", describe(v))
}

func asInt(v any) (int, error) {
	f, err := asFloat(v)
	if err != nil {
		return 0, errors.New(strings.Replace(err.Error(), "a number", "a whole number", 1))
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, fmt.Errorf("want a whole number, not %v", f)
	}
	return int(f), nil
}

// asList takes a JSON array of strings, or a string: a JSON array, or
// comma-separated values (-c bedrockModels=a,b).
func asList(v any) ([]string, error) {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "[") {
			var l []any
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				return nil, fmt.Errorf("want a JSON array of strings: %w", err)
			}
			v = l
		} else {
			var out []string
			for _, part := range strings.Split(s, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
			return out, nil
		}
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of strings, not %s", describe(v))
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want a list of strings, not one holding %s", describe(e))
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func joinInts(l []int) string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
