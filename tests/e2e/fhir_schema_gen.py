# Generates tests/e2e/fhir_r4_subset.schema.json from the element tables below
# (element names and cardinalities of FHIR R4 4.0.1, from the specification's pages).
import json, sys
PRIM = {
 "string": {"type": "string"},
 "markdown": {"type": "string"},
 "code": {"type": "string", "pattern": "^[^\\s]+(\\s[^\\s]+)*$"},
 "id": {"type": "string", "pattern": "^[A-Za-z0-9\\-\\.]{1,64}$"},
 "uri": {"type": "string", "pattern": "^\\S*$"},
 "url": {"type": "string", "pattern": "^\\S*$"},
 "canonical": {"type": "string", "pattern": "^\\S*$"},
 "base64Binary": {"type": "string"},
 "boolean": {"type": "boolean"},
 "integer": {"type": "integer"},
 "unsignedInt": {"type": "integer", "minimum": 0},
 "positiveInt": {"type": "integer", "minimum": 1},
 "decimal": {"type": "number"},
 "date": {"type": "string", "pattern": "^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$"},
 "dateTime": {"type": "string", "pattern": "^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$"},
 "instant": {"type": "string", "pattern": "^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?(Z|(\\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"},
 "time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?$"},
 "xhtml": {"type": "string"},
}
# Complex types and backbone elements: "name": "Type" (0..1) or "Type*" (0..*).
# "Loose" marks an element this subset does not detail (any object).
EL = {"id": "string", "extension": "Extension*"}
BB = dict(EL, modifierExtension="Extension*")
TYPES = {
 "Extension": dict(EL, url="uri"),  # + value[x]: any value* key
 "Element": {"id": "string", "extension": "Extension*"},
 "Coding": dict(EL, system="uri", version="string", code="code", display="string", userSelected="boolean"),
 "CodeableConcept": dict(EL, coding="Coding*", text="string"),
 "Identifier": dict(EL, use="code", type="CodeableConcept", system="uri", value="string", period="Period", assigner="Reference"),
 "Period": dict(EL, start="dateTime", end="dateTime"),
 "Reference": dict(EL, reference="string", type="uri", identifier="Identifier", display="string"),
 "Money": dict(EL, value="decimal", currency="code"),
 "Quantity": dict(EL, value="decimal", comparator="code", unit="string", system="uri", code="code"),
 "Range": dict(EL, low="Quantity", high="Quantity"),
 "HumanName": dict(EL, use="code", text="string", family="string", given="string*", prefix="string*", suffix="string*", period="Period"),
 "ContactPoint": dict(EL, system="code", value="string", use="code", rank="positiveInt", period="Period"),
 "Address": dict(EL, use="code", type="code", text="string", line="string*", city="string", district="string", state="string", postalCode="string", country="string", period="Period"),
 "Meta": dict(EL, versionId="id", lastUpdated="instant", source="uri", profile="canonical*", security="Coding*", tag="Coding*"),
 "Narrative": dict(EL, status="code", div="xhtml"),
 "Annotation": dict(EL, authorReference="Reference", authorString="string", time="dateTime", text="markdown"),
 "Attachment": dict(EL, contentType="code", language="code", data="base64Binary", url="url", size="unsignedInt", hash="base64Binary", title="string", creation="dateTime"),
 "ContactDetail": dict(EL, name="string", telecom="ContactPoint*"),
 "Signature": "Loose", "Dosage": "Loose", "UsageContext": "Loose", "Age": "Quantity", "Duration": "Quantity",
 "Bundle_Link": dict(BB, relation="string", url="uri"),
 "Bundle_Entry": dict(BB, link="Bundle_Link*", fullUrl="uri", resource="ResourceList", search="Bundle_Search", request="Loose", response="Loose"),
 "Bundle_Search": dict(BB, mode="code", score="decimal"),
 "Appointment_Participant": dict(BB, type="CodeableConcept*", actor="Reference", required="code", status="code", period="Period"),
 "AuditEvent_Agent": dict(BB, type="CodeableConcept", role="CodeableConcept*", who="Reference", altId="string", name="string", requestor="boolean", location="Reference", policy="uri*", media="Coding", network="AuditEvent_Network", purposeOfUse="CodeableConcept*"),
 "AuditEvent_Network": dict(BB, address="string", type="code"),
 "AuditEvent_Source": dict(BB, site="string", observer="Reference", type="Coding*"),
 "AuditEvent_Entity": dict(BB, what="Reference", type="Coding", role="Coding", lifecycle="Coding", securityLabel="Coding*", name="string", description="string", query="base64Binary", detail="AuditEvent_Detail*"),
 "AuditEvent_Detail": dict(BB, type="string", valueString="string", valueBase64Binary="base64Binary"),
 "Communication_Payload": dict(BB, contentString="string", contentAttachment="Attachment", contentReference="Reference"),
 "DocumentReference_RelatesTo": dict(BB, code="code", target="Reference"),
 "DocumentReference_Content": dict(BB, attachment="Attachment", format="Coding"),
 "DocumentReference_Context": dict(BB, encounter="Reference*", event="CodeableConcept*", period="Period", facilityType="CodeableConcept", practiceSetting="CodeableConcept", sourcePatientInfo="Reference", related="Reference*"),
 "Encounter_Participant": dict(BB, type="CodeableConcept*", period="Period", individual="Reference"),
 "Encounter_Diagnosis": dict(BB, condition="Reference", use="CodeableConcept", rank="positiveInt"),
 "Encounter_Location": dict(BB, location="Reference", status="code", physicalType="CodeableConcept", period="Period"),
 "Encounter_StatusHistory": dict(BB, status="code", period="Period"),
 "Encounter_ClassHistory": dict(BB, **{"class": "Coding"}, period="Period"),
 "Invoice_Participant": dict(BB, role="CodeableConcept", actor="Reference"),
 "Invoice_LineItem": dict(BB, sequence="positiveInt", chargeItemReference="Reference", chargeItemCodeableConcept="CodeableConcept", priceComponent="Invoice_PriceComponent*"),
 "Invoice_PriceComponent": dict(BB, type="code", code="CodeableConcept", factor="decimal", amount="Money"),
 "Coverage_Class": dict(BB, type="CodeableConcept", value="string", name="string"),
 "Coverage_CostToBeneficiary": dict(BB, type="CodeableConcept", valueQuantity="Quantity", valueMoney="Money", exception="Loose*"),
 "AllergyIntolerance_Reaction": dict(BB, substance="CodeableConcept", manifestation="CodeableConcept*", description="string", onset="dateTime", severity="code", exposureRoute="CodeableConcept", note="Annotation*"),
 "CapabilityStatement_Software": dict(BB, name="string", version="string", releaseDate="dateTime"),
 "CapabilityStatement_Implementation": dict(BB, description="string", url="url", custodian="Reference"),
 "CapabilityStatement_Rest": dict(BB, mode="code", documentation="markdown", security="Loose", resource="CapabilityStatement_Resource*", interaction="CapabilityStatement_Interaction*", searchParam="CapabilityStatement_SearchParam*", operation="CapabilityStatement_Operation*", compartment="canonical*"),
 "CapabilityStatement_Resource": dict(BB, type="code", profile="canonical", supportedProfile="canonical*", documentation="markdown", interaction="CapabilityStatement_Interaction*", versioning="code", readHistory="boolean", updateCreate="boolean", conditionalCreate="boolean", conditionalRead="code", conditionalUpdate="boolean", conditionalDelete="code", referencePolicy="code*", searchInclude="string*", searchRevInclude="string*", searchParam="CapabilityStatement_SearchParam*", operation="CapabilityStatement_Operation*"),
 "CapabilityStatement_Interaction": dict(BB, code="code", documentation="markdown"),
 "CapabilityStatement_SearchParam": dict(BB, name="string", definition="canonical", type="code", documentation="markdown"),
 "CapabilityStatement_Operation": dict(BB, name="string", definition="canonical", documentation="markdown"),
 "OperationOutcome_Issue": dict(BB, severity="code", code="code", details="CodeableConcept", diagnostics="string", location="string*", expression="string*"),
}
RES = {"id": "id", "meta": "Meta", "implicitRules": "uri", "language": "code"}
DOM = dict(RES, text="Narrative", contained="ResourceList*", extension="Extension*", modifierExtension="Extension*")
onset = dict(onsetDateTime="dateTime", onsetAge="Age", onsetPeriod="Period", onsetRange="Range", onsetString="string")
RESOURCES = {
 "Account": (dict(DOM, identifier="Identifier*", status="code", type="CodeableConcept", name="string", subject="Reference*", servicePeriod="Period", coverage="Loose*", owner="Reference", description="string", guarantor="Loose*", partOf="Reference"), ["status"]),
 "AllergyIntolerance": (dict(DOM, identifier="Identifier*", clinicalStatus="CodeableConcept", verificationStatus="CodeableConcept", type="code", category="code*", criticality="code", code="CodeableConcept", patient="Reference", encounter="Reference", **onset, recordedDate="dateTime", recorder="Reference", asserter="Reference", lastOccurrence="dateTime", note="Annotation*", reaction="AllergyIntolerance_Reaction*"), ["patient"]),
 "Appointment": (dict(DOM, identifier="Identifier*", status="code", cancelationReason="CodeableConcept", serviceCategory="CodeableConcept*", serviceType="CodeableConcept*", specialty="CodeableConcept*", appointmentType="CodeableConcept", reasonCode="CodeableConcept*", reasonReference="Reference*", priority="unsignedInt", description="string", supportingInformation="Reference*", start="instant", end="instant", minutesDuration="positiveInt", slot="Reference*", created="dateTime", comment="string", patientInstruction="string", basedOn="Reference*", participant="Appointment_Participant*", requestedPeriod="Period*"), ["status", "participant"]),
 "AuditEvent": (dict(DOM, type="Coding", subtype="Coding*", action="code", period="Period", recorded="instant", outcome="code", outcomeDesc="string", purposeOfEvent="CodeableConcept*", agent="AuditEvent_Agent*", source="AuditEvent_Source", entity="AuditEvent_Entity*"), ["type", "recorded", "agent", "source"]),
 "Bundle": (dict(RES, identifier="Identifier", type="code", timestamp="instant", total="unsignedInt", link="Bundle_Link*", entry="Bundle_Entry*", signature="Signature"), ["type"]),
 "CapabilityStatement": (dict(DOM, url="uri", version="string", name="string", title="string", status="code", experimental="boolean", date="dateTime", publisher="string", contact="ContactDetail*", description="markdown", useContext="UsageContext*", jurisdiction="CodeableConcept*", purpose="markdown", copyright="markdown", kind="code", instantiates="canonical*", imports="canonical*", software="CapabilityStatement_Software", implementation="CapabilityStatement_Implementation", fhirVersion="code", format="code*", patchFormat="code*", implementationGuide="canonical*", rest="CapabilityStatement_Rest*", messaging="Loose*", document="Loose*"), ["status", "date", "kind", "fhirVersion", "format"]),
 "Communication": (dict(DOM, identifier="Identifier*", instantiatesCanonical="canonical*", instantiatesUri="uri*", basedOn="Reference*", partOf="Reference*", inResponseTo="Reference*", status="code", statusReason="CodeableConcept", category="CodeableConcept*", priority="code", medium="CodeableConcept*", subject="Reference", topic="CodeableConcept", about="Reference*", encounter="Reference", sent="dateTime", received="dateTime", recipient="Reference*", sender="Reference", reasonCode="CodeableConcept*", reasonReference="Reference*", payload="Communication_Payload*", note="Annotation*"), ["status"]),
 "Condition": (dict(DOM, identifier="Identifier*", clinicalStatus="CodeableConcept", verificationStatus="CodeableConcept", category="CodeableConcept*", severity="CodeableConcept", code="CodeableConcept", bodySite="CodeableConcept*", subject="Reference", encounter="Reference", **onset, abatementDateTime="dateTime", abatementAge="Age", abatementPeriod="Period", abatementRange="Range", abatementString="string", recordedDate="dateTime", recorder="Reference", asserter="Reference", stage="Loose*", evidence="Loose*", note="Annotation*"), ["subject"]),
 "Coverage": (dict(DOM, identifier="Identifier*", status="code", type="CodeableConcept", policyHolder="Reference", subscriber="Reference", subscriberId="string", beneficiary="Reference", dependent="string", relationship="CodeableConcept", period="Period", payor="Reference*", **{"class": "Coverage_Class*"}, order="positiveInt", network="string", costToBeneficiary="Coverage_CostToBeneficiary*", subrogation="boolean", contract="Reference*"), ["status", "beneficiary", "payor"]),
 "DocumentReference": (dict(DOM, masterIdentifier="Identifier", identifier="Identifier*", status="code", docStatus="code", type="CodeableConcept", category="CodeableConcept*", subject="Reference", date="instant", author="Reference*", authenticator="Reference", custodian="Reference", relatesTo="DocumentReference_RelatesTo*", description="string", securityLabel="CodeableConcept*", content="DocumentReference_Content*", context="DocumentReference_Context"), ["status", "content"]),
 "Encounter": (dict(DOM, identifier="Identifier*", status="code", statusHistory="Encounter_StatusHistory*", **{"class": "Coding"}, classHistory="Encounter_ClassHistory*", type="CodeableConcept*", serviceType="CodeableConcept", priority="CodeableConcept", subject="Reference", episodeOfCare="Reference*", basedOn="Reference*", participant="Encounter_Participant*", appointment="Reference*", period="Period", length="Duration", reasonCode="CodeableConcept*", reasonReference="Reference*", diagnosis="Encounter_Diagnosis*", account="Reference*", hospitalization="Loose", location="Encounter_Location*", serviceProvider="Reference", partOf="Reference"), ["status", "class"]),
 "Invoice": (dict(DOM, identifier="Identifier*", status="code", cancelledReason="string", type="CodeableConcept", subject="Reference", recipient="Reference", date="dateTime", participant="Invoice_Participant*", issuer="Reference", account="Reference", lineItem="Invoice_LineItem*", totalPriceComponent="Invoice_PriceComponent*", totalNet="Money", totalGross="Money", paymentTerms="markdown", note="Annotation*"), ["status"]),
 "MedicationStatement": (dict(DOM, identifier="Identifier*", basedOn="Reference*", partOf="Reference*", status="code", statusReason="CodeableConcept*", category="CodeableConcept", medicationCodeableConcept="CodeableConcept", medicationReference="Reference", subject="Reference", context="Reference", effectiveDateTime="dateTime", effectivePeriod="Period", dateAsserted="dateTime", informationSource="Reference", derivedFrom="Reference*", reasonCode="CodeableConcept*", reasonReference="Reference*", note="Annotation*", dosage="Dosage*"), ["status", "subject"]),
 "OperationOutcome": (dict(DOM, issue="OperationOutcome_Issue*"), ["issue"]),
 "Patient": (dict(DOM, identifier="Identifier*", active="boolean", name="HumanName*", telecom="ContactPoint*", gender="code", birthDate="date", deceasedBoolean="boolean", deceasedDateTime="dateTime", address="Address*", maritalStatus="CodeableConcept", multipleBirthBoolean="boolean", multipleBirthInteger="integer", photo="Attachment*", contact="Loose*", communication="Loose*", generalPractitioner="Reference*", managingOrganization="Reference", link="Loose*"), []),
 "Slot": (dict(DOM, identifier="Identifier*", serviceCategory="CodeableConcept*", serviceType="CodeableConcept*", specialty="CodeableConcept*", appointmentType="CodeableConcept", schedule="Reference", status="code", start="instant", end="instant", overbooked="boolean", comment="string"), ["schedule", "status", "start", "end"]),
}
def ref(t):
    many = t.endswith("*"); t = t.rstrip("*")
    if t == "Loose": one = {"type": "object"}
    elif t in PRIM: one = {"$ref": f"#/definitions/{t}"}
    else: one = {"$ref": f"#/definitions/{t}"}
    # No minItems: the official schema has none either (R4's JSON rules forbid empty
    # arrays, but search Bundles answer "entry": [] today; see the report).
    return {"type": "array", "items": one} if many else one
def obj(props, required=(), extra=None):
    o = {"type": "object", "properties": {k: ref(v) for k, v in props.items()},
         "patternProperties": {"^_[A-Za-z]+$": {}}, "additionalProperties": False}
    if extra: o["patternProperties"].update(extra)
    if required: o["required"] = list(required)
    return o
defs = dict(PRIM)
for n, p in TYPES.items():
    if p == "Loose": defs[n] = {"type": "object"}
    elif isinstance(p, str): defs[n] = {"$ref": f"#/definitions/{p}"}
    elif n == "Extension": defs[n] = obj(p, ["url"], {"^value[A-Z][A-Za-z]*$": {}})
    else: defs[n] = obj(p)
for n, (p, req) in RESOURCES.items():
    o = obj(p, ["resourceType"] + req)
    o["properties"]["resourceType"] = {"const": n}
    defs[n] = o
defs["ResourceList"] = {"type": "object", "required": ["resourceType"],
    "properties": {"resourceType": {"enum": sorted(RESOURCES)}},
    "allOf": [{"if": {"properties": {"resourceType": {"const": n}}}, "then": {"$ref": f"#/definitions/{n}"}} for n in sorted(RESOURCES)]}
schema = {"$schema": "http://json-schema.org/draft-07/schema#",
          "$id": "https://continuum.example/tests/fhir_r4_subset.schema.json",
          "description": "A subset of the FHIR R4 (4.0.1) JSON schema: the resource types the portal's API returns, each with its R4 element names (additionalProperties false: an element R4 does not define is an error), primitive value types and the shape of the common data types. Written from the R4 specification's resource and data type pages (element names, cardinalities, the primitive types' regular expressions); elements marked as plain objects are not detailed. Generated from element tables; edit the tables in tests/e2e/fhir_schema_gen.py and regenerate (python3 tests/e2e/fhir_schema_gen.py tests/e2e/fhir_r4_subset.schema.json), not this file.",
          "$ref": "#/definitions/ResourceList", "definitions": defs}
json.dump(schema, open(sys.argv[1], "w"), indent=1, sort_keys=True)
