import { useRef, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { ErrorNote, Section } from "../components";

interface Enrolment {
  otpauth_uri: string;
  secret: string;
  expires_in: number;
}

// "ABCD EFGH ..." is easier to type into an authenticator app than 32 letters in a row.
function grouped(secret: string): string {
  return secret.replace(/(.{4})/g, "$1 ").trim();
}

// Two-step sign-in (TOTP): start with the password (POST /api/v1/session/totp), add the
// secret to an authenticator app, prove it with a code (POST .../confirm). The factor is
// enforced only once confirmed; the server refuses a second enrolment (409).
export function Security() {
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [state, setState] = useState<"idle" | "on" | "already">("idle");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const codeInput = useRef<HTMLInputElement>(null);

  async function start(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api<Enrolment>("/api/v1/session/totp", { method: "POST", body: { password } });
      setEnrolment(r.data);
      setPassword("");
      setTimeout(() => codeInput.current?.focus(), 0);
    } catch (err) {
      const x = err as ApiError;
      if (x.status === 409) setState("already");
      else setError(x.status === 403 ? "The password is wrong. Nothing was changed." : x.message);
    } finally {
      setBusy(false);
    }
  }

  async function confirm(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api("/api/v1/session/totp/confirm", { method: "POST", body: { code: code.trim() } });
      setState("on");
      setEnrolment(null);
    } catch (err) {
      const x = err as ApiError;
      setError(
        x.status === 400
          ? "That code does not match. Enter the 6 digits your app shows now (they change every 30 seconds). Two-step sign-in is not on yet."
          : x.message,
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <h1>Security</h1>
      <Section title="Two-step sign-in" id="totp-title">
        {state === "on" && (
          <p class="banner banner-info" role="status">
            Two-step sign-in is on. From now on, log in with your password and the 6-digit code from your
            authenticator app.
          </p>
        )}
        {state === "already" && (
          <p class="banner banner-info" role="status">
            Two-step sign-in is already on for this account. If you lost your authenticator app, contact the
            help desk: they can reset it after checking who you are.
          </p>
        )}
        {state === "idle" && !enrolment && (
          <form onSubmit={start}>
            <p>
              With two-step sign-in, logging in needs your password and a code from an authenticator app on your
              phone, so a stolen password alone cannot open your records.
            </p>
            <label for="totp-password">Your password</label>
            <input id="totp-password" type="password" autocomplete="current-password" required value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
            <ErrorNote error={error} />
            <button type="submit" disabled={busy}>{busy ? "Checking…" : "Turn on two-step sign-in"}</button>
          </form>
        )}
        {state === "idle" && enrolment && (
          <form onSubmit={confirm}>
            <ol>
              <li>
                In your authenticator app, add an account with this key:{" "}
                <code class="secret" data-secret={enrolment.secret}>{grouped(enrolment.secret)}</code>{" "}
                (or <a href={enrolment.otpauth_uri}>open it in the app</a> on this device).
              </li>
              <li>Enter the 6-digit code the app shows, within {Math.round(enrolment.expires_in / 60)} minutes.</li>
            </ol>
            <label for="totp-code">Code from the app</label>
            <input id="totp-code" ref={codeInput} inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"
              maxLength={6} required value={code} onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
            <ErrorNote error={error} />
            <button type="submit" disabled={busy}>{busy ? "Checking…" : "Confirm"}</button>
          </form>
        )}
      </Section>
    </>
  );
}
