package awsquery_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wardenhq/warden/shared/awsquery"
	"github.com/wardenhq/warden/shared/sigv4test"
)

const (
	accessKey = "AKIAQUERYTEST0000000"
	secretKey = "query-test-secret"
	token     = "query-test-session-token"
)

// identity is GetCallerIdentity's result.
type identity struct {
	Arn     string
	UserID  string `xml:"UserId"`
	Account string
}

// identityAnswer is STS's documented answer to GetCallerIdentity.
const identityAnswer = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/warden-broker/lambda</Arn>
    <UserId>AROA123EXAMPLE123:lambda</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>`

// serve starts a server that checks each request's signature (by creds,
// for the session token too when there is one) and shape, then answers
// with status and body. It keeps the last request's form in *form.
func serve(t *testing.T, creds sigv4test.Credentials, sessionToken string, status int, body string, form ...*url.Values) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		if len(form) > 0 {
			*form[0], _ = url.ParseQuery(string(data))
		}
		mustSign := []string{"content-type"}
		if sessionToken != "" {
			mustSign = append(mustSign, "x-amz-security-token")
			if got := r.Header.Get("X-Amz-Security-Token"); got != sessionToken {
				t.Errorf("X-Amz-Security-Token %q, want %q", got, sessionToken)
			}
		}
		if err := sigv4test.Verify(r, data, creds, mustSign...); err != nil {
			t.Errorf("signature: %v", err)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != awsquery.ContentType {
			t.Errorf("%s %s (%s), want POST / (%s)", r.Method, r.URL, r.Header.Get("Content-Type"), awsquery.ContentType)
		}
		w.Header().Set("X-Amzn-RequestId", "header-request-id")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCall(t *testing.T) {
	t.Parallel()
	var form url.Values
	srv := serve(t, sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey, Region: "eu-central-1", Service: "sts"}, token, 200, identityAnswer, &form)
	c := &awsquery.Client{Region: "eu-central-1", Service: "sts", Version: "2011-06-15", Endpoint: srv.URL + "/",
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, token)}
	var got identity
	if err := c.Call(context.Background(), "GetCallerIdentity", url.Values{"Extra": {"a b&c"}}, &got); err != nil {
		t.Fatal(err)
	}
	want := identity{Arn: "arn:aws:sts::123456789012:assumed-role/warden-broker/lambda", UserID: "AROA123EXAMPLE123:lambda", Account: "123456789012"}
	if got != want {
		t.Errorf("result %+v, want %+v", got, want)
	}
	if enc := form.Encode(); enc != "Action=GetCallerIdentity&Extra=a+b%26c&Version=2011-06-15" {
		t.Errorf("form %s", enc)
	}
}

func TestCallWithoutResult(t *testing.T) {
	t.Parallel()
	srv := serve(t, sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey, Region: "us-east-1", Service: "iam"}, "", 200,
		`<DeleteRolePolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteRolePolicyResponse>`)
	c := &awsquery.Client{Region: "us-east-1", Service: "iam", Version: "2010-05-08", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")}
	if err := c.Call(context.Background(), "DeleteRolePolicy", url.Values{"RoleName": {"r"}, "PolicyName": {"p"}}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestErrorAnswer(t *testing.T) {
	t.Parallel()
	const answer = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>User: arn:aws:iam::123456789012:user/broker is not authorized to perform: sts:AssumeRole</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>`
	tests := []struct {
		name, body string
		status     int
		want       awsquery.Error
		text       string
	}{
		{"documented", answer, 403,
			awsquery.Error{Service: "sts", Action: "AssumeRole", Status: 403, Type: "Sender", Code: "AccessDenied",
				Message: "User: arn:aws:iam::123456789012:user/broker is not authorized to perform: sts:AssumeRole", RequestID: "c6104cbe-af31-11e0-8154-cbc7ccf896c7"},
			"sts AssumeRole: AccessDenied (HTTP 403): User: arn:aws:iam::123456789012:user/broker is not authorized to perform: sts:AssumeRole"},
		{"not XML", "<html>Bad Gateway</html>", 502,
			awsquery.Error{Service: "sts", Action: "AssumeRole", Status: 502, Code: "HTTP502", RequestID: "header-request-id"},
			"sts AssumeRole: HTTP502 (HTTP 502)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey, Region: "eu-west-1", Service: "sts"}, token, tt.status, tt.body)
			c := &awsquery.Client{Region: "eu-west-1", Service: "sts", Version: "2011-06-15", Endpoint: srv.URL,
				Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, token)}
			err := c.Call(context.Background(), "AssumeRole", url.Values{"RoleArn": {"arn:aws:iam::123456789012:role/r"}}, &identity{})
			var e *awsquery.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v, want *awsquery.Error", err, err)
			}
			if *e != tt.want {
				t.Errorf("error %+v\nwant  %+v", *e, tt.want)
			}
			if err.Error() != tt.text {
				t.Errorf("error text %q\nwant       %q", err, tt.text)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), token) || strings.Contains(err.Error(), accessKey) {
				t.Errorf("error text %q names the credentials", err)
			}
		})
	}
}

func TestAnswerTooLarge(t *testing.T) {
	t.Parallel()
	big := "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>" + strings.Repeat("a", awsquery.MaxAnswer) + "</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"
	srv := serve(t, sigv4test.Credentials{AccessKey: accessKey, SecretKey: secretKey, Region: "eu-west-1", Service: "sts"}, "", 200, big)
	c := &awsquery.Client{Region: "eu-west-1", Service: "sts", Version: "2011-06-15", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")}
	err := c.Call(context.Background(), "GetCallerIdentity", nil, &identity{})
	if err == nil || err.Error() != "sts GetCallerIdentity: the answer (HTTP 200) is over 65536 bytes" {
		t.Errorf("error %v", err)
	}
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c := &awsquery.Client{Region: "eu-west-1", Service: "sts", Version: "2011-06-15", Endpoint: srv.URL,
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, token)}
	err := c.Call(context.Background(), "GetCallerIdentity", nil, &identity{})
	var e *awsquery.Error
	var ue *url.Error
	if err == nil || errors.As(err, &e) || !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "sts GetCallerIdentity: Post ") {
		t.Errorf("error %T %v, want a wrapped *url.Error", err, err)
	}
	if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), token) {
		t.Errorf("error text %q names the credentials", err)
	}
}

// recorder is a transport that records the URL of each request and
// answers 200 with an empty DeleteRolePolicy answer.
type recorder struct{ urls []string }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	body := "<" + req.FormValue("Action") + "Response/>"
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}, Request: req}, nil
}

func TestDefaultEndpoints(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	creds := credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")
	for _, c := range []*awsquery.Client{
		{Region: "eu-central-1", Service: "sts", Version: "2011-06-15"},
		{Region: "us-east-1", Service: "iam", Version: "2010-05-08"},
	} {
		c.Credentials, c.HTTP = creds, &http.Client{Transport: rec}
		if err := c.Call(context.Background(), "DeleteRolePolicy", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"https://sts.eu-central-1.amazonaws.com/", "https://iam.amazonaws.com/"}; strings.Join(rec.urls, " ") != strings.Join(want, " ") {
		t.Errorf("URLs %q, want %q", rec.urls, want)
	}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       string
	}{
		{"not XML", "{}", "the answer (HTTP 200) is not XML: EOF"},
		{"another action's", "<AssumeRoleResponse/>", "the answer (HTTP 200) is <AssumeRoleResponse>, want <GetCallerIdentityResponse>"},
		{"no result", "<GetCallerIdentityResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
			"the answer (HTTP 200) has no <GetCallerIdentityResult>"},
		{"truncated", "<GetCallerIdentityResponse><ResponseMetadata>", "the answer (HTTP 200) is not XML: XML syntax error on line 1: unexpected EOF"},
		{"bad result", "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a</Ar></GetCallerIdentityResult></GetCallerIdentityResponse>",
			"the answer's <GetCallerIdentityResult> could not be read: XML syntax error on line 1: element <Arn> closed by </Ar>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := awsquery.ParseAnswer("GetCallerIdentity", 200, []byte(tt.body), &identity{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v\nwant  %s", err, tt.want)
			}
		})
	}
}
