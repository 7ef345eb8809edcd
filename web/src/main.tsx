import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import {
  type Session,
  ApiError,
  api,
  currentSession,
  forget,
  lastApiActivity,
  login,
  loginOps,
  logout,
  onSessionEnd,
  subscribe,
} from "./api";
import { ErrorNote } from "./components";
import { linkClick, navigate, usePath } from "./router";
import { Summary } from "./pages/summary";
import { Appointments } from "./pages/appointments";
import { Messages } from "./pages/messages";
import { Bills } from "./pages/bills";
import { Articles } from "./pages/articles";
import { ProviderHome, Chart } from "./pages/provider";
import { ProviderInbox } from "./pages/inbox";
import { Ops } from "./pages/ops";
import { Security } from "./pages/security";
import "./styles.css";

function Login({ notice }: { notice: string | null }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      endNotice = null; // the notice of the previous session's end, before the re-render
      await login(username.trim(), password, totp.trim() || undefined);
    } catch (err) {
      const x = err as ApiError;
      setError(
        x.status === 401
          ? "Wrong username, password or one-time code. If you turned on two-step sign-in, enter the code from your authenticator app."
          : x.message,
      );
    } finally {
      setBusy(false);
    }
  }
  return (
    <main id="main" class="login">
      <h1>Log in to Continuum</h1>
      {notice && (
        <p class="banner banner-info" role="status">
          {notice}
        </p>
      )}
      <form onSubmit={submit} class="card">
        <label for="username">Username</label>
        <input id="username" name="username" autocomplete="username" required value={username}
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required
          value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        <label for="totp">One-time code <span class="hint">(only if you turned on two-step sign-in)</span></label>
        <input id="totp" name="totp" inputMode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"
          maxLength={6} value={totp} onInput={(e) => setTotp((e.target as HTMLInputElement).value)} />
        <ErrorNote error={error} />
        <button type="submit" disabled={busy}>{busy ? "Logging in…" : "Log in"}</button>
      </form>
      <p class="hint">For your safety, you stay logged in only while this page is open: reloading it asks you to log in again.</p>
      <OpsLogin />
    </main>
  );
}

function OpsLogin() {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    setError(null);
    try {
      endNotice = null;
      await loginOps(token.trim());
      navigate("/ops");
    } catch (err) {
      setError((err as ApiError).message);
    }
  }
  return (
    <details class="ops">
      <summary>Operators: the operations dashboard</summary>
      <form onSubmit={submit} class="card">
        <label for="ops-token">Ops token <span class="hint">(the node's [ops] token_file)</span></label>
        <input id="ops-token" type="password" autocomplete="off" required value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)} />
        <ErrorNote error={error} />
        <button type="submit">Open the dashboard</button>
      </form>
    </details>
  );
}

// Warns a minute before the server's idle timeout ends the session, then logs out.
function IdleWatch({ session }: { session: Session }) {
  const [left, setLeft] = useState<number | null>(null);
  const stay = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const t = setInterval(() => {
      const idleMs = session.idleTimeoutS * 1000;
      const remaining = Math.round((lastApiActivity() + idleMs - Date.now()) / 1000);
      const warnAt = Math.min(60, Math.floor(session.idleTimeoutS / 4));
      // Log out a little before the server's own timeout, so that the logout still finds
      // the session (the server counts from its own clock and request arrival).
      if (remaining <= 2) {
        endNotice = "You were logged out after a period of inactivity.";
        logout().catch(() => forget());
      } else setLeft(remaining <= warnAt ? remaining : null);
    }, 1000);
    return () => clearInterval(t);
  }, [session]);
  useEffect(() => {
    if (left !== null) stay.current?.focus();
  }, [left !== null]);
  if (left === null) return null;
  return (
    <div class="idle" role="alertdialog" aria-modal="false" aria-labelledby="idle-title" aria-describedby="idle-text">
      <h2 id="idle-title">Are you still there?</h2>
      <p id="idle-text">For your privacy you will be logged out in {left} seconds.</p>
      <button ref={stay} type="button"
        onClick={() => api("/api/v1/messages/unread").then(() => setLeft(null)).catch(() => {})}>
        Stay logged in
      </button>{" "}
      <button type="button" class="secondary" onClick={() => logout().catch(() => forget())}>Log out now</button>
    </div>
  );
}

let endNotice: string | null = null;

const patientNav = [
  ["/", "Summary"],
  ["/appointments", "Appointments"],
  ["/messages", "Messages"],
  ["/bills", "Bills"],
  ["/articles", "Health library"],
  ["/security", "Security"],
] as const;
const opsNav = [["/ops", "Operations"]] as const;
const providerNav = [
  ["/provider", "Patients"],
  ["/provider/inbox", "Inbox"],
  ["/articles", "Health library"],
  ["/security", "Security"],
] as const;

function Page({ path, session }: { path: string; session: Session }) {
  if (session.role === "operator") return <Ops />;
  if (session.role === "provider") {
    const m = path.match(/^\/provider\/patients\/(\d+)$/);
    if (m) return <Chart id={m[1]} />;
    if (path === "/provider/inbox") return <ProviderInbox />;
    if (path === "/articles") return <Articles />;
    if (path === "/security") return <Security />;
    return <ProviderHome />;
  }
  if (session.role !== "patient")
    return <p>This web app is for patients and providers. Auditors use the audit API.</p>;
  switch (path) {
    case "/appointments":
      return <Appointments session={session} />;
    case "/messages":
      return <Messages session={session} />;
    case "/bills":
      return <Bills session={session} />;
    case "/articles":
      return <Articles session={session} />;
    case "/security":
      return <Security />;
    default:
      return <Summary session={session} />;
  }
}

function App() {
  const [, tick] = useState(0);
  useEffect(() => subscribe(() => tick((n) => n + 1)), []);
  useEffect(() => {
    onSessionEnd((why) => {
      // A notice already set says why the session ended (the idle logout whose DELETE
      // found it expired on the server): keep it.
      endNotice = endNotice ?? why;
      forget();
    });
  }, []);
  const path = usePath();
  const session = currentSession();
  useEffect(() => {
    document.title = session ? "Continuum" : "Log in — Continuum";
  }, [session]);
  if (!session) return <Login notice={endNotice} />;
  const nav = session.role === "provider" ? providerNav : session.role === "operator" ? opsNav : patientNav;
  const here = session.role === "provider" && path === "/" ? "/provider" : session.role === "operator" ? "/ops" : path;
  return (
    <div onClick={linkClick}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">Continuum</span>
        <nav aria-label="Main">
          <ul>
            {nav.map(([href, label]) => (
              <li key={href}>
                <a href={href} aria-current={here === href || (href === "/provider" && here.startsWith("/provider/patients")) ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who">
          {session.username}{" "}
          <button type="button" class="secondary" onClick={() => { endNotice = "You are logged out."; logout().catch(() => forget()); navigate("/"); }}>
            Log out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={here} session={session} />
      </main>
      {session.role !== "operator" && <IdleWatch session={session} />}
    </div>
  );
}

const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading…" placeholder
render(<App />, root);
