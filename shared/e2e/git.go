package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRemote makes a bare repository and a clone of it whose origin is the bare repository, both
// in temporary directories. The remote has one commit on main; the clone's main is one commit
// ahead, and the clone has a branch feature/x (one more commit on top of main) that the remote
// lacks. So `git push origin main` moves the remote's main and `git push origin feature/x`
// creates a ref there; RemoteRef shows either.
func GitRemote(t testing.TB) (bareDir, workDir string) {
	t.Helper()
	root := t.TempDir()
	bareDir = filepath.Join(root, "remote.git")
	workDir = filepath.Join(root, "work")
	git(t, root, "init", "--quiet", "--bare", "--initial-branch=main", bareDir)
	git(t, root, "init", "--quiet", "--initial-branch=main", workDir)
	commit := func(file, msg string) {
		writeFile(t, filepath.Join(workDir, file), msg+"\n")
		git(t, workDir, "add", file)
		git(t, workDir, "commit", "--quiet", "-m", msg)
	}
	commit("README.md", "initial commit")
	git(t, workDir, "remote", "add", "origin", bareDir)
	git(t, workDir, "push", "--quiet", "origin", "main")
	git(t, workDir, "branch", "--quiet", "--set-upstream-to=origin/main", "main")
	commit("main.txt", "main ahead of origin")
	git(t, workDir, "checkout", "--quiet", "-b", "feature/x")
	commit("feature.txt", "feature work")
	git(t, workDir, "checkout", "--quiet", "main")
	return bareDir, workDir
}

// RemoteRef returns the commit that ref (a branch name such as "main" or "feature/x", or a full
// ref) points to in the repository at dir, or "" if there is no such ref.
func RemoteRef(t testing.TB, dir, ref string) string {
	t.Helper()
	if !strings.HasPrefix(ref, "refs/") {
		ref = "refs/heads/" + ref
	}
	cmd := exec.Command("git", "rev-parse", "--verify", "--quiet", ref+"^{commit}")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	if err != nil {
		if _, ok := err.(*exec.ExitError); ok {
			return ""
		}
		t.Fatalf("e2e: git rev-parse %s in %s: %v", ref, dir, err)
	}
	return strings.TrimSpace(string(out))
}

// git runs git with a fixed identity and no user or system configuration.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("e2e: git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Warden E2E",
		"GIT_AUTHOR_EMAIL=e2e@warden.invalid",
		"GIT_COMMITTER_NAME=Warden E2E",
		"GIT_COMMITTER_EMAIL=e2e@warden.invalid",
	)
}
