import { useEffect, useRef, useState } from "preact/hooks";
import { api, ApiError, newIdempotencyKey, setDegradation, type Session } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";
import { type Bundle, type Resource, concept, entries, fmtDate, money } from "../fhir";

interface Invoice extends Resource {
  status: string;
  date?: string;
  lineItem?: { chargeItemCodeableConcept?: { text?: string } }[];
  totalGross?: { value?: number; currency?: string };
  totalNet?: { value?: number; currency?: string };
  paymentTerms?: string;
}
interface Account extends Resource {
  extension?: { url: string; valueMoney?: { value?: number; currency?: string }; valueUnsignedInt?: number }[];
}
interface Coverage extends Resource {
  status?: string;
  payor?: { display?: string }[];
  class?: { value?: string; name?: string; type?: { text?: string } }[];
  period?: { start?: string };
}
interface Job {
  id: string;
  status: "queued" | "processing" | "succeeded" | "failed";
  url?: string;
  attempts?: number;
  result?: {
    status?: string; message?: string; error?: string; decline_code?: string;
    eligible?: boolean; checked_at?: string;
    coverage?: { plan?: string; network?: string; copay_cents?: number; deductible_remaining_cents?: number; reason?: string };
  };
}

// What an insurance check found, in words.
function eligibility(job: Job): string {
  const r = job.result;
  if (!r || r.eligible === undefined) return "The insurer answered, but without a decision. Please call your insurer.";
  const c = r.coverage ?? {};
  if (!r.eligible) return `Not covered for an office visit: ${c.reason ?? "the insurer found no active coverage"}.`;
  const usd = (cents?: number) => (cents === undefined ? "—" : money({ value: cents / 100, currency: "USD" }));
  return `Covered for an office visit (${c.plan ?? "your plan"}, ${c.network ?? "network unknown"}): copay ${usd(c.copay_cents)}, deductible left ${usd(c.deductible_remaining_cents)}.`;
}

interface Check {
  state: "sending" | "done" | "processing" | "error";
  message: string;
}

// A payment's state on this page: what the person sees.
interface Payment {
  invoice: string;
  key: string; // the same key for a retry: never charged twice
  state: "sending" | "done" | "processing" | "refused" | "error";
  message: string;
  jobPath?: string;
}

function jobPath(url: string | undefined, location: string | null): string | undefined {
  const u = location ?? url;
  if (!u) return undefined;
  try {
    return new URL(u, location ? undefined : globalThis.location.href).pathname;
  } catch {
    return undefined;
  }
}

function refusal(job: Job | undefined): string {
  const r = job?.result;
  const why = r?.message ?? r?.error ?? r?.decline_code;
  return `The payment service refused this payment${why ? ` (${why})` : ""}. Nothing was charged. Check your payment details with your card issuer, then try again or call the billing office.`;
}

export function Bills({ session }: { session: Session }) {
  const pid = session.patient!;
  const data = useLoad(async () => {
    const [acct, inv, cov] = await Promise.all([
      api<Bundle<Account>>(`/fhir/R4/Account?patient=${pid}`, { area: "billing" }),
      api<Bundle<Invoice>>(`/fhir/R4/Invoice?patient=${pid}&_count=50`, { area: "billing" }),
      api<Bundle<Coverage>>(`/fhir/R4/Coverage?patient=${pid}`, { area: "billing" }),
    ]);
    return { account: entries(acct.data)[0], invoices: entries(inv.data), coverage: entries(cov.data) };
  }, []);
  const [payments, setPayments] = useState<Record<string, Payment>>({});
  const timers = useRef<number[]>([]);
  useEffect(() => () => timers.current.forEach((t) => clearTimeout(t)), []);

  function update(p: Payment) {
    setPayments((all) => ({ ...all, [p.invoice]: p }));
  }

  // Polls a queued payment's job until it has an outcome.
  function poll(p: Payment, delayS: number) {
    const t = window.setTimeout(async () => {
      try {
        const r = await api<Job>(p.jobPath!, { area: "billing" });
        if (r.data.status === "succeeded") {
          update({ ...p, state: "done", message: "Your payment went through. Thank you!" });
          setDegradation("billing", undefined);
          data.reload();
        } else if (r.data.status === "failed") {
          update({ ...p, state: "refused", message: refusal(r.data) });
          setDegradation("billing", undefined);
        } else poll(p, Math.min(10, delayS + 1));
      } catch {
        poll(p, 10); // the status will be there later; the payment itself is saved
      }
    }, delayS * 1000);
    timers.current.push(t);
  }

  async function pay(inv: Invoice) {
    const cents = Math.round((inv.totalNet?.value ?? 0) * 100);
    const prev = payments[inv.id];
    const p: Payment = {
      invoice: inv.id,
      key: prev && prev.state === "error" ? prev.key : newIdempotencyKey("pay"),
      state: "sending",
      message: "Sending your payment…",
    };
    update(p);
    try {
      const r = await api<Job>(`/api/v1/payments`, {
        method: "POST", area: "billing", idempotencyKey: p.key,
        body: { invoice: `Invoice/${inv.id}`, amount_cents: cents },
      });
      if (r.status === 202) {
        const q = { ...p, state: "processing" as const, jobPath: jobPath(r.data.url, r.headers.get("Location")),
          message: "Your payment is being processed. It will be completed once, automatically: keep this page open to see the outcome here, or check your balance later." };
        update(q);
        poll(q, Number(r.headers.get("Retry-After")) || 3);
      } else {
        update({ ...p, state: "done", message: "Your payment went through. Thank you!" });
        data.reload();
      }
    } catch (x) {
      const e = x as ApiError;
      if (e.status === 422) update({ ...p, state: "refused", message: refusal(e.body as Job) });
      else update({ ...p, state: "error", message: `Your payment was not sent: ${e.message} Trying again is safe: you will not be charged twice.` });
    }
  }

  const [checks, setChecks] = useState<Record<string, Check>>({});
  const setCheck = (id: string, c: Check) => setChecks((all) => ({ ...all, [id]: c }));

  function pollCheck(id: string, path: string, delayS: number) {
    const t = window.setTimeout(async () => {
      try {
        const r = await api<Job>(path, { area: "billing" });
        if (r.data.status === "succeeded") setCheck(id, { state: "done", message: eligibility(r.data) });
        else if (r.data.status === "failed")
          setCheck(id, { state: "error", message: "The insurer could not check your coverage. Please call your insurer." });
        else pollCheck(id, path, Math.min(10, delayS + 1));
      } catch {
        pollCheck(id, path, 10);
      }
    }, delayS * 1000);
    timers.current.push(t);
  }

  async function verify(c: Coverage) {
    setCheck(c.id, { state: "sending", message: "Asking your insurer…" });
    try {
      const r = await api<Job>(`/api/v1/insurance/verify`, {
        method: "POST", area: "billing", idempotencyKey: newIdempotencyKey("verify"),
        body: { coverage: `Coverage/${c.id}`, service: "office-visit" },
      });
      if (r.status === 202) {
        setCheck(c.id, { state: "processing", message: "Your coverage check is queued: the insurer is not answering right now. It runs when they are back; keep this page open to see the answer." });
        const path = jobPath(r.data.url, r.headers.get("Location"));
        if (path) pollCheck(c.id, path, Number(r.headers.get("Retry-After")) || 3);
      } else setCheck(c.id, { state: "done", message: eligibility(r.data) });
    } catch (x) {
      const e = x as ApiError;
      setCheck(c.id, { state: "error", message: e.status === 422 ? "The insurer could not check your coverage. Please call your insurer." : `The check did not run: ${e.message}` });
    }
  }

  const acct = data.data?.account;
  const balance = acct?.extension?.find((e) => e.url.endsWith("account-balance"))?.valueMoney;
  const open = acct?.extension?.find((e) => e.url.endsWith("account-open-invoices"))?.valueUnsignedInt;

  return (
    <>
      <h1>Bills and insurance</h1>
      <DegradedBanner area="billing" />
      <ErrorNote error={data.error} onRetry={data.reload} />
      {data.loading && !data.data && <Loading what="your bills" />}
      {data.data && (
        <div class="grid">
          <Section title="Balance" id="h-balance">
            <p class="big">{money(balance)}</p>
            <p class="hint">{open ?? 0} open invoice{open === 1 ? "" : "s"}</p>
          </Section>
          <Section title="Invoices" id="h-invoices">
            {data.data.invoices.length === 0 && <p>No invoices.</p>}
            <ul class="list">
              {data.data.invoices.map((inv) => {
                const p = payments[inv.id];
                const due = (inv.totalNet?.value ?? 0) > 0 && inv.status === "issued";
                return (
                  <li key={inv.id} data-invoice={inv.id}>
                    <strong>{inv.lineItem?.[0]?.chargeItemCodeableConcept?.text ?? `Invoice ${inv.id}`}</strong>
                    <div>{money(inv.totalGross)} · {due ? <>still to pay {money(inv.totalNet)}</> : "paid"} · {inv.paymentTerms}</div>
                    <div class="hint">Issued {fmtDate(inv.date)}</div>
                    {p && (
                      <p class={`payment payment-${p.state}`} role={p.state === "refused" || p.state === "error" ? "alert" : "status"} data-payment={p.state}>
                        {p.message}
                      </p>
                    )}
                    {due && (!p || p.state === "error" || p.state === "refused") && (
                      <button type="button" onClick={() => pay(inv)} aria-label={`Pay ${money(inv.totalNet)} for invoice ${inv.id}`}>
                        Pay {money(inv.totalNet)}
                      </button>
                    )}
                  </li>
                );
              })}
            </ul>
          </Section>
          <Section title="Insurance" id="h-coverage">
            {data.data.coverage.length === 0 && <p>No insurance on file.</p>}
            <ul class="list">
              {data.data.coverage.map((c) => (
                <li key={c.id}>
                  <strong>{c.payor?.[0]?.display ?? "Insurer"}</strong> <span class="tag">{c.status}</span>
                  {c.class?.map((k) => <div key={k.value}>{concept(k.type)}: {k.name ?? k.value}</div>)}
                  <div class="hint">since {fmtDate(c.period?.start)}</div>
                  {checks[c.id] && (
                    <p class={`payment payment-${checks[c.id].state}`} role={checks[c.id].state === "error" ? "alert" : "status"} data-check={checks[c.id].state}>
                      {checks[c.id].message}
                    </p>
                  )}
                  {checks[c.id]?.state !== "sending" && checks[c.id]?.state !== "processing" && (
                    <button type="button" class="secondary" onClick={() => verify(c)}
                      aria-label={`Check coverage for an office visit (${c.payor?.[0]?.display ?? "your insurer"})`}>
                      Check coverage for an office visit
                    </button>
                  )}
                </li>
              ))}
            </ul>
          </Section>
        </div>
      )}
    </>
  );
}
