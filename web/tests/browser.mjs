// Browser tests of the web app: headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core, axe-core on every page, screenshots at desktop and phone width.
//
// Run by tests/e2e/test_web.py, which starts the server, its database and the stand-in
// dependencies, and passes (JSON in CONTINUUM_WEB_TEST):
//   base       the node's URL
//   artifacts  folder for screenshots and the axe reports
//   control    the test's control URL: POST /fault {dependency, mode}, /pg-stop, /pg-start
//   scenario   patient | provider | payment-queued | database-down
//   and the scenario's accounts (patient, provider, password, family name).
// Prints one JSON line per check; exits 1 on the first failure (with a screenshot).
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const cfg = JSON.parse(process.env.CONTINUUM_WEB_TEST ?? "{}");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
const T = 20000; // per wait

function log(o) {
  process.stdout.write(JSON.stringify(o) + "\n");
}

class Check extends Error {}
function expect(cond, what) {
  if (!cond) throw new Check(what);
}

async function control(op, body) {
  const r = await fetch(`${cfg.control}/${op}`, { method: "POST", body: JSON.stringify(body ?? {}) });
  if (!r.ok) throw new Error(`control ${op}: ${r.status} ${await r.text()}`);
}

const cspViolations = [];
const pageErrors = [];

// axe-core on the page as it is now: no serious or critical violation.
async function axe(page, name) {
  await page.evaluate(axeSource); // through DevTools, not a <script>: the CSP stays strict
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  fs.writeFileSync(path.join(cfg.artifacts, `${cfg.scenario}-${name}-axe.json`), JSON.stringify(result.violations, null, 1));
  log({ check: "axe", page: name, violations: result.violations.length, serious_or_critical: bad.length });
  expect(
    bad.length === 0,
    `axe on ${name}: ` + bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join("; ")})`).join(" | "),
  );
}

async function shots(page, name) {
  for (const [label, size] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(50);
    const file = path.join(cfg.artifacts, `${cfg.scenario}-${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (label === "phone") {
      // responsive: nothing wider than the phone's screen
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(wide <= size.width + 1, `${name} at ${size.width} px scrolls sideways (${wide} px wide)`);
    }
  }
  await page.setViewportSize(DESKTOP);
}

// Every page: accessible, screenshots at both widths.
async function checkPage(page, name) {
  await axe(page, name);
  await shots(page, name);
  log({ check: "page", page: name, ok: true });
}

// Logs in as a person would: on a transient failure (busy, 503) the page says so and
// they press the button again (at most 3 times).
async function logIn(page, username) {
  await page.goto(cfg.base + "/");
  await page.getByRole("heading", { name: "Log in to Continuum" }).waitFor({ timeout: T });
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(cfg.password);
  for (let attempt = 1; ; attempt++) {
    await page.getByRole("button", { name: "Log in" }).click();
    const out = page.getByRole("navigation", { name: "Main" }).or(page.getByRole("alert"));
    await out.first().waitFor({ timeout: T });
    if (await page.getByRole("navigation", { name: "Main" }).isVisible()) return;
    const why = await page.getByRole("alert").innerText();
    log({ check: "login-retry", attempt, why });
    expect(attempt < 3 && !why.includes("Wrong username"), `log in as ${username}: ${why}`);
    await page.waitForTimeout(1000);
  }
}

async function nav(page, label) {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: label }).click();
}

async function text(locator) {
  await locator.waitFor({ timeout: T });
  return (await locator.innerText()).trim();
}

// ---- scenarios

async function patient(page) {
  await page.goto(cfg.base + "/");
  await checkPage(page, "login");
  // a wrong password says so, and nothing more
  await page.getByLabel("Username").fill(cfg.patient);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Log in" }).click();
  expect((await text(page.getByRole("alert"))).includes("Wrong username, password"), "wrong password message");
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Your health summary" }).waitFor({ timeout: T });
  await page.getByRole("heading", { name: "Allergies" }).waitFor({ timeout: T });
  const meds = await text(page.locator("section", { has: page.getByRole("heading", { name: "Medications" }) }));
  expect(meds.length > "Medications".length + 5, "medications are listed");
  expect(await page.getByRole("heading", { name: "Visits" }).isVisible(), "visits are shown");
  // the token is in memory only
  const stored = await page.evaluate(() => ({ l: localStorage.length, s: sessionStorage.length, c: document.cookie }));
  expect(stored.l === 0 && stored.s === 0 && stored.c === "", `nothing stored in the browser: ${JSON.stringify(stored)}`);
  await checkPage(page, "summary");

  // appointments: book the first free time, then cancel it
  await nav(page, "Appointments");
  const slot = page.locator("[data-slot]").first();
  await slot.waitFor({ timeout: T });
  const when = (await slot.locator("strong").innerText()).trim();
  await checkPage(page, "appointments");
  await slot.getByRole("button", { name: /^Book / }).click();
  expect((await text(page.locator(".success"))).startsWith("Booked:"), "booked");
  const appt = page.locator("[data-appointment]", { hasText: when });
  await appt.waitFor({ timeout: T });
  log({ check: "booked", when });
  await checkPage(page, "appointments-booked");
  // reschedule it to another free time, then cancel it there
  await appt.getByRole("button", { name: /^Reschedule / }).click();
  await page.getByRole("heading", { name: /^Pick a new time/ }).waitFor({ timeout: T });
  await axe(page, "appointments-reschedule");
  const other = page.locator("[data-slot]").filter({ hasNotText: when }).first();
  await other.waitFor({ timeout: T });
  const later = (await other.locator("strong").innerText()).trim();
  await other.getByRole("button", { name: /^Move here/ }).click();
  expect((await text(page.locator(".success"))).startsWith("Your appointment was moved"), "rescheduled");
  const moved = page.locator("[data-appointment]", { hasText: later });
  await moved.waitFor({ timeout: T });
  log({ check: "rescheduled", from: when, to: later });
  await moved.getByRole("button", { name: /^Cancel / }).click();
  expect((await text(page.locator(".success"))).startsWith("Cancelled"), "cancelled");
  await page.locator("[data-appointment]").first().waitFor({ state: "detached", timeout: T });
  log({ check: "cancelled", when: later });

  // messages: a new conversation with the care team, then a reply in it
  await nav(page, "Messages");
  await page.getByRole("heading", { name: /^Conversations/ }).waitFor({ timeout: T });
  const to = page.getByLabel("To");
  await to.locator("option:nth-child(2)").waitFor({ state: "attached", timeout: T });
  await to.selectOption({ index: 1 });
  const subject = `Question ${Date.now()}`;
  await page.getByLabel("Subject").fill(subject);
  await page.getByLabel("Message", { exact: true }).fill("Can I take my blood pressure pill in the evening instead?");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  expect((await text(page.locator(".success"))) === "Your message was sent.", "message sent");
  await page.getByRole("button", { name: subject }).click();
  await page.getByLabel("Reply").fill("Also: is it fine with grapefruit juice?");
  await page.getByRole("button", { name: "Send reply" }).click();
  await page.locator(".thread li", { hasText: "grapefruit" }).waitFor({ timeout: T });
  log({ check: "message", subject });
  await checkPage(page, "messages");

  // bills: pay the first open invoice
  await nav(page, "Bills");
  const pay = page.getByRole("button", { name: /^Pay / }).first();
  await pay.waitFor({ timeout: T });
  await checkPage(page, "bills");
  await pay.click();
  const outcome = page.locator("[data-payment='done']");
  expect((await text(outcome)).includes("went through"), "payment went through");
  log({ check: "paid" });
  // insurance: verify the coverage on file for an office visit
  const verify = page.getByRole("button", { name: /^Check coverage for an office visit/ }).first();
  await verify.click();
  const answer = await text(page.locator("[data-check='done']"));
  expect(/^(Covered|Not covered) for an office visit/.test(answer), `insurance answer: ${answer}`);
  log({ check: "insurance", answer });

  // articles and recommendations
  await nav(page, "Health library");
  const first = page.locator("section", { has: page.getByRole("heading", { name: "All articles" }) }).locator("li button").first();
  await first.waitFor({ timeout: T });
  await checkPage(page, "articles");
  await first.click();
  await page.locator("article p").first().waitFor({ timeout: T });
  await checkPage(page, "article");

  // a reload asks to log in again (the token lived in memory only)
  await page.reload();
  await page.getByRole("heading", { name: "Log in to Continuum" }).waitFor({ timeout: T });
  log({ check: "reload-logs-out" });
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Your health summary" }).waitFor({ timeout: T });
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor({ timeout: T });
  log({ check: "logout" });
}

async function provider(page) {
  await logIn(page, cfg.provider);
  await page.getByRole("heading", { name: "Your patients" }).waitFor({ timeout: T });
  await page.getByLabel("Family name").fill(cfg.family);
  await page.getByRole("button", { name: "Search", exact: true }).click();
  const link = page.locator(`a[href='/provider/patients/${cfg.patient_id}']`);
  await link.waitFor({ timeout: T });
  await checkPage(page, "lookup");
  await link.click();
  await page.getByRole("heading", { name: `Chart of patient ${cfg.patient_id}` }).waitFor({ timeout: T });
  await page.getByRole("heading", { name: "Visits" }).waitFor({ timeout: T });
  await checkPage(page, "chart");
  const title = `Follow-up ${Date.now()}`;
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Note", { exact: true }).fill("Seen for follow-up; BP 128/82. Continue lisinopril.");
  await page.getByRole("button", { name: "Save draft" }).click();
  const saved = await text(page.locator(".success"));
  const id = saved.match(/Draft note (\d+) saved/)?.[1];
  expect(id, `draft saved: ${saved}`);
  await page.getByRole("button", { name: `Sign note ${id}` }).click();
  expect((await text(page.locator(".success", { hasText: "is signed" }))).includes(`Note ${id} is signed`), "signed");
  await page.locator(`[data-note='${id}']`, { hasText: "signed" }).waitFor({ timeout: T });
  log({ check: "note-signed", id });
  await checkPage(page, "chart-signed");
  // a message to the patient, then a reply in that conversation
  const topic = `Your results ${Date.now()}`;
  await page.getByLabel("Subject").fill(topic);
  await page.getByLabel("New message to the patient").fill("Your blood test results are normal.");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator(".success", { hasText: "Your message was sent." }).waitFor({ timeout: T });
  await page.getByRole("button", { name: topic }).click();
  await page.getByLabel(`Reply in "${topic}"`).fill("No change to your medicines.");
  await page.getByRole("button", { name: "Send reply" }).click();
  await page.locator(".thread li", { hasText: "No change to your medicines." }).waitFor({ timeout: T });
  log({ check: "provider-message", topic });
  await checkPage(page, "chart-messages");
  // the inbox: the patient's message (sent by the test) across patients, unread; opening it
  // shows the conversation on the chart and marks it read
  await nav(page, "Inbox");
  await page.getByRole("heading", { name: "Inbox", exact: true }).waitFor({ timeout: T });
  const item = page.locator("[data-thread]", { hasText: cfg.inbox_subject });
  await item.getByText("1 new").waitFor({ timeout: T });
  // the conversation just written to the patient is listed (last from the provider, nothing
  // unread), and "Unread only" leaves it out
  const answered = page.locator("[data-thread]", { hasText: topic });
  await answered.getByText("Last from you").waitFor({ timeout: T });
  await page.getByLabel("Unread only").check();
  await answered.waitFor({ state: "detached", timeout: T });
  await item.getByText("1 new").waitFor({ timeout: T });
  await checkPage(page, "inbox");
  await item.getByRole("link", { name: cfg.inbox_subject }).click();
  await page.getByRole("heading", { name: `Chart of patient ${cfg.patient_id}` }).waitFor({ timeout: T });
  await page.locator(".thread li", { hasText: cfg.inbox_text }).waitFor({ timeout: T });
  // opened on the chart: marked read (the list reloads without its "new" tag) before leaving
  await page.locator("li", { has: page.getByRole("button", { name: cfg.inbox_subject, exact: true }) })
    .locator(".tag.unread").waitFor({ state: "detached", timeout: T });
  await nav(page, "Inbox");
  await page.locator("[data-thread]", { hasText: cfg.inbox_subject }).waitFor({ timeout: T });
  expect(!(await page.locator("[data-thread]", { hasText: cfg.inbox_subject }).getByText("new").isVisible()),
    "the opened conversation is no longer unread");
  log({ check: "provider-inbox" });
  // a patient the provider does not treat: refused, break-the-glass offered with a warning
  await page.goto(cfg.base + "/");
  await logIn(page, cfg.provider);
  await page.getByRole("heading", { name: "Your patients" }).waitFor({ timeout: T });
  await page.getByLabel("Patient number", { exact: true }).fill(cfg.other_patient_id);
  await page.getByRole("button", { name: "Open chart" }).click();
  await page.getByRole("heading", { name: "You do not treat this patient" }).waitFor({ timeout: T });
  await checkPage(page, "break-glass");
  await page.getByLabel("Reason for emergency access").fill("unresponsive in ED");
  await page.getByRole("button", { name: /Break the glass/ }).click();
  await page.getByText("This access is recorded and will be reviewed.").waitFor({ timeout: T });
  await page.getByRole("heading", { name: "Visits" }).waitFor({ timeout: T });
  log({ check: "break-glass" });
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor({ timeout: T });
}

async function paymentQueued(page) {
  await control("fault", { dependency: "payments", mode: "refuse" });
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Your health summary" }).waitFor({ timeout: T });
  await nav(page, "Bills");
  const pay = page.getByRole("button", { name: /^Pay / }).first();
  await pay.waitFor({ timeout: T });
  await pay.click();
  const banner = page.locator("[data-area='billing'][data-degraded='queued']");
  expect((await text(banner)).includes("Your payment is queued"), "queued banner");
  expect((await text(page.locator("[data-payment='processing']"))).includes("Your payment is being processed"), "processing");
  log({ check: "banner", area: "billing", mode: "queued" });
  await checkPage(page, "payment-queued");
  // the service returns: the queued payment completes once and the page says so
  await control("fault", { dependency: "payments", mode: "ok" });
  await page.locator("[data-payment='done']").waitFor({ timeout: 60000 });
  log({ check: "queued-payment-completed" });
  await checkPage(page, "payment-completed");
}

// The EHR stops answering: records come from the last sync, marked with its time.
async function recordsStale(page) {
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Allergies" }).waitFor({ timeout: T });
  const asOf = page.locator("[data-area='records'][data-degraded='as-of']");
  // An earlier scenario's EHR fault may leave the node's breaker open for a moment (records
  // then show as stale): start from fresh records.
  for (let i = 0; !(await asOf.count()); i++) {
    expect(i < 20, "records never showed their sync time (fresh) before the fault");
    await page.waitForTimeout(1000);
    await nav(page, "Appointments");
    await page.getByRole("heading", { name: "Appointments" }).waitFor({ timeout: T });
    await nav(page, "Summary");
    await page.getByRole("heading", { name: "Allergies" }).waitFor({ timeout: T });
  }
  expect((await text(asOf)).startsWith("Records as of"), "records carry their sync time");
  await control("fault", { dependency: "ehr", mode: "refuse" });
  const stale = page.locator("[data-area='records'][data-degraded='stale']");
  // the sync's age passes twice its interval and the EHR's breaker opens: reload the page's data
  for (let i = 0; ; i++) {
    await nav(page, "Appointments");
    await page.getByRole("heading", { name: "Appointments" }).waitFor({ timeout: T });
    await nav(page, "Summary");
    await page.getByRole("heading", { name: "Allergies" }).waitFor({ timeout: T });
    if (await stale.count()) break;
    expect(i < 30, "records never marked stale");
    await page.waitForTimeout(1000);
  }
  const b = await text(stale);
  expect(/Records as of .* \(the hospital system is not answering\)/.test(b), `stale records banner: ${b}`);
  log({ check: "banner", area: "records", mode: "stale", text: b });
  await checkPage(page, "records-stale");
  await control("fault", { dependency: "ehr", mode: "ok" });
}

async function databaseDown(page) {
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Your health summary" }).waitFor({ timeout: T });
  await nav(page, "Health library");
  await page.locator("section", { has: page.getByRole("heading", { name: "All articles" }) }).locator("li button").first().waitFor({ timeout: T });
  await nav(page, "Appointments");
  const slot = page.locator("[data-slot]").first();
  await slot.waitFor({ timeout: T });
  await control("pg-stop");
  try {
    // scheduling: a booking is refused as read-only; the page says what still works
    await slot.getByRole("button", { name: /^Book / }).click();
    const banner = page.locator("[data-area='scheduling'][data-degraded='read-only']");
    const b = await text(banner);
    expect(b.includes("Scheduling is read-only right now; you can still see your appointments"), `read-only banner: ${b}`);
    expect((await text(page.getByRole("alert"))).includes("Booking did not happen"), "the failed booking says so");
    log({ check: "banner", area: "scheduling", mode: "read-only" });
    await checkPage(page, "scheduling-read-only");
    // articles: from the node's cache, marked stale
    await page.waitForTimeout(1500); // past the cache's fresh_ms
    await nav(page, "Health library");
    const stale = page.locator("[data-area='articles'][data-degraded='stale']");
    expect((await text(stale)).includes("Showing articles from"), "stale articles banner");
    log({ check: "banner", area: "articles", mode: "stale" });
    await checkPage(page, "articles-stale");
    // records: cannot be reached, said plainly, with a way to retry
    await nav(page, "Summary");
    const rec = page.locator("[data-area='records'][data-degraded='unavailable']");
    expect((await text(rec)).includes("Your records cannot be reached right now"), "records banner");
    await page.getByRole("button", { name: "Try again" }).waitFor({ timeout: T });
    log({ check: "banner", area: "records", mode: "unavailable" });
    await checkPage(page, "records-unavailable");
  } finally {
    await control("pg-start");
  }
  // and back: the summary loads again after a retry
  await page.getByRole("button", { name: "Try again" }).click();
  await page.getByRole("heading", { name: "Allergies" }).waitFor({ timeout: 60000 });
  log({ check: "recovered" });
}

async function ops(page) {
  await page.goto(cfg.base + "/");
  await page.getByText("Operators: the operations dashboard").click();
  await page.getByLabel(/^Ops token/).fill("not-the-token");
  await page.getByRole("button", { name: "Open the dashboard" }).click();
  expect((await text(page.getByRole("alert"))).includes("not this node's ops token"), "a wrong token is refused");
  await page.getByLabel(/^Ops token/).fill(cfg.ops_token);
  await page.getByRole("button", { name: "Open the dashboard" }).click();
  await page.getByRole("heading", { name: "Operations" }).waitFor({ timeout: T });
  await page.locator("[data-tier='critical'][data-mode='normal']").waitFor({ timeout: T });
  await page.locator("[data-dependency='payments']").waitFor({ timeout: T });
  if (cfg.report_id) {
    // charts from the node's Prometheus: request rate, errors, p99 per tier, with points
    for (const chart of ["requests", "errors", "latency"])
      await page.locator(`[data-chart='${chart}'] svg[data-chart-points]`).waitFor({ timeout: T });
    const points = Number(await page.locator("[data-chart='requests'] svg").getAttribute("data-chart-points"));
    expect(points > 0, "the request chart has points");
    await page.locator("[data-chart='requests'] [data-series='critical']").waitFor({ timeout: T });
    // the rollout in progress, and its report with the judge's decisions
    await page.locator(`[data-rollout-running='${cfg.report_id}']`).waitFor({ timeout: T });
    const item = page.locator(`[data-report='${cfg.report_id}']`);
    await item.getByRole("button", { name: /^Show report/ }).click();
    await page.locator(`[data-report-detail='${cfg.report_id}'] tr[data-verdict='pass']`).waitFor({ timeout: T });
    expect((await text(page.locator(`[data-report-detail='${cfg.report_id}'] pre`))).includes(cfg.report_text),
      "the report's text is shown");
    // a longer span: the same charts over an hour
    await page.getByLabel("1 hour").check();
    await page.locator("[data-chart='latency'] svg[data-chart-points]").waitFor({ timeout: T });
    log({ check: "ops-charts", points });
  } else {
    await page.locator("[data-charts-unavailable]").waitFor({ timeout: T });
  }
  await checkPage(page, "ops");
  // a dependency breaks: its breaker opens on the dashboard (refreshed every 5 s)
  await control("fault", { dependency: "payments", mode: "refuse" });
  try {
    await page.locator("[data-dependency='payments'][data-breaker='open']").waitFor({ timeout: 40000 });
    log({ check: "ops-breaker-open" });
    await checkPage(page, "ops-breaker-open");
  } finally {
    await control("fault", { dependency: "payments", mode: "ok" });
  }
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor({ timeout: T });
}

// A node with a short idle timeout (session_idle_s = cfg.idle_s): the warning comes a
// little before it, "Stay logged in" keeps the session, and doing nothing logs out.
async function idle(page) {
  await logIn(page, cfg.patient);
  await page.getByRole("heading", { name: "Your health summary" }).waitFor({ timeout: T });
  const dialog = page.getByRole("alertdialog", { name: "Are you still there?" });
  await dialog.waitFor({ timeout: cfg.idle_s * 1000 });
  log({ check: "idle-warning" });
  await shots(page, "idle-warning");
  await dialog.getByRole("button", { name: "Stay logged in" }).click();
  await dialog.waitFor({ state: "detached", timeout: T });
  await nav(page, "Bills"); // the session still works
  await page.getByRole("heading", { name: "Invoices" }).waitFor({ timeout: T });
  log({ check: "idle-stayed" });
  await page.getByText("You were logged out after a period of inactivity.").waitFor({ timeout: (cfg.idle_s + 10) * 1000 });
  log({ check: "idle-logged-out" });
}

// RFC 6238 code of a base32 secret at a 30-second step (what an authenticator app shows).
function totpCode(secret, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of secret.replace(/=+$/, "")) bits += alphabet.indexOf(ch).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = crypto.createHmac("sha1", key).update(msg).digest();
  const o = h[h.length - 1] & 0xf;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, "0");
}

// Two-step sign-in: turned on from the Security page (wrong password and wrong code say
// so and change nothing), then required at the next login.
async function security(page) {
  await logIn(page, cfg.patient);
  await nav(page, "Security");
  await page.getByRole("heading", { name: "Two-step sign-in" }).waitFor({ timeout: T });
  await checkPage(page, "security");
  await page.getByLabel("Your password").fill("not-the-password");
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  expect((await text(page.getByRole("alert"))).includes("The password is wrong"), "wrong password refused");
  await page.getByLabel("Your password").fill(cfg.password);
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  const secret = await page.locator("code.secret").getAttribute("data-secret", { timeout: T });
  expect(/^[A-Z2-7]{16,}$/.test(secret ?? ""), `a base32 secret is shown (${secret})`);
  await checkPage(page, "security-enrol");
  const step = Math.floor(Date.now() / 1000 / 30);
  const right = totpCode(secret, step);
  await page.getByLabel("Code from the app").fill(right === "000000" ? "111111" : "000000");
  await page.getByRole("button", { name: "Confirm" }).click();
  expect((await text(page.getByRole("alert"))).includes("does not match"), "a wrong code is refused");
  await page.getByLabel("Code from the app").fill(totpCode(secret, Math.floor(Date.now() / 1000 / 30)));
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByText("Two-step sign-in is on.").waitFor({ timeout: T });
  log({ check: "totp-on" });
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByText("You are logged out.").waitFor({ timeout: T });
  // the password alone is no longer enough
  await page.getByLabel("Username").fill(cfg.patient);
  await page.getByLabel("Password").fill(cfg.password);
  await page.getByRole("button", { name: "Log in" }).click();
  expect((await text(page.getByRole("alert"))).includes("one-time code"), "login without the code refused");
  // the next step's code (the confirm used this one; a code is good for one login only)
  await page.getByLabel("One-time code").fill(totpCode(secret, Math.floor(Date.now() / 1000 / 30) + 1));
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: T });
  await nav(page, "Security");
  await page.getByLabel("Your password").fill(cfg.password);
  await page.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await page.getByText("Two-step sign-in is already on").waitFor({ timeout: T });
  log({ check: "totp-login" });
}

// A slow connection (every request 400 ms later, 50 kB/s down, 20 kB/s up: worse than
// DevTools' "Slow 3G"): the first load stays quick (the bundle is small), every page says
// it is loading before its data arrives, and nothing jumps (cumulative layout shift under
// 0.1, Core Web Vitals' "good"; shifts right after a click or key press do not count).
async function slowNetwork(page) {
  await page.addInitScript(() => {
    window.__cls = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (!e.hadRecentInput) window.__cls += e.value;
    }).observe({ type: "layout-shift", buffered: true });
  });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions",
    { offline: false, latency: 400, downloadThroughput: 50 * 1024, uploadThroughput: 20 * 1024 });
  const t0 = Date.now();
  await page.goto(cfg.base + "/");
  await page.getByRole("heading", { name: "Log in to Continuum" }).waitFor({ timeout: T });
  const firstLoadMs = Date.now() - t0;
  log({ check: "slow-first-load", ms: firstLoadMs });
  expect(firstLoadMs < 8000, `the login page took ${firstLoadMs} ms on the slow connection`);
  await logIn(page, cfg.patient);
  // each page: its loading state first, then its data
  for (const [label, loading, done] of [
    [null, "Loading your records", page.getByRole("heading", { name: "Allergies" })],
    ["Appointments", "Loading appointments",
      page.locator("[data-appointment]").or(page.getByText("No upcoming appointments.")).first()],
    ["Messages", "Loading messages", page.getByRole("heading", { name: /^Conversations \(\d+ unread\)/ })],
  ]) {
    if (label) await nav(page, label);
    await page.getByRole("status").filter({ hasText: loading }).waitFor({ timeout: T });
    await done.waitFor({ timeout: 30000 });
    log({ check: "slow-loading-shown", page: label ?? "Summary" });
  }
  await page.waitForTimeout(1500);
  const cls = await page.evaluate(() => window.__cls);
  log({ check: "slow-layout-shift", cls });
  expect(cls < 0.1, `cumulative layout shift ${cls.toFixed(3)} on the slow connection`);
  await checkPage(page, "slow-messages");
}

const scenarios = { patient, "slow-network": slowNetwork, security, provider, ops, idle, "payment-queued": paymentQueued, "records-stale": recordsStale, "database-down": databaseDown };

async function main() {
  const run = scenarios[cfg.scenario];
  if (!run) throw new Error(`unknown scenario ${cfg.scenario}`);
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "continuum-chromium-"));
  // A fresh, empty profile each run (launchPersistentContext passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: DESKTOP,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let page;
  try {
    page = await context.newPage();
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to (execute|load|apply)/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await run(page);
    expect(cspViolations.length === 0, `CSP violations: ${cspViolations.join(" | ")}`);
    expect(pageErrors.length === 0, `page errors: ${pageErrors.join(" | ")}`);
    log({ scenario: cfg.scenario, ok: true });
  } catch (e) {
    if (page) await page.screenshot({ path: path.join(cfg.artifacts, `${cfg.scenario}-FAILED.png`), fullPage: true }).catch(() => {});
    log({ scenario: cfg.scenario, ok: false, error: String(e?.message ?? e), url: page?.url() });
    process.exitCode = 1;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

await main();
