// Signing in with the stack's Cognito user pool, as the AWS SDK does it (InitiateAuth, USER_PASSWORD_AUTH).
// /web/config.json says where: locally the ALB's /auth/ (the emulator's Cognito on the page's own origin),
// on AWS Cognito's own endpoint. The token lives in sessionStorage (this tab only, gone when it closes):
// never in the URL or localStorage.

const KEY = "bookrec.session";
let config = null;
let current = null;

export async function loadConfig() {
  if (config) return config;
  try {
    const response = await fetch("/web/config.json", { headers: { Accept: "application/json" } });
    config = response.ok ? await response.json() : {};
  } catch {
    config = {};
  }
  return config;
}

function claims(token) {
  const part = token.split(".")[1] || "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
  return JSON.parse(decodeURIComponent(Array.from(json, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
}

export function session() {
  if (current === null) {
    try { current = JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch { current = null; }
  }
  if (current && current.expires_at * 1000 < Date.now() + 30_000) signOut();
  return current;
}

export function signOut() {
  current = null;
  sessionStorage.removeItem(KEY);
}

export async function signIn(username, password) {
  const auth = (await loadConfig()).auth;
  if (!auth || !auth.endpoint || !auth.client_id) throw new Error("Sign-in is not configured on this server.");
  let response;
  try {
    response = await fetch(auth.endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth" },
      body: JSON.stringify({ AuthFlow: "USER_PASSWORD_AUTH", ClientId: auth.client_id,
                             AuthParameters: { USERNAME: username, PASSWORD: password } }),
    });
  } catch {
    throw new Error("The sign-in service could not be reached.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `Sign-in failed (HTTP ${response.status}).`);
  const token = data.AuthenticationResult && data.AuthenticationResult.AccessToken;
  if (!token) throw new Error("Sign-in needs another step this page does not support.");
  const c = claims(token);
  current = { access_token: token, sub: c.sub, username: c.username || username, expires_at: c.exp };
  sessionStorage.setItem(KEY, JSON.stringify(current));
  return current;
}
