#include "seed/catalog.hpp"

#include <array>

namespace continuum::seed::catalog {
namespace {

using namespace std::string_view_literals;

constexpr std::array kFemaleGiven = {
    "Mary"sv,       "Patricia"sv, "Jennifer"sv,  "Linda"sv,    "Elizabeth"sv, "Barbara"sv,
    "Susan"sv,      "Jessica"sv,  "Sarah"sv,     "Karen"sv,    "Lisa"sv,      "Nancy"sv,
    "Betty"sv,      "Sandra"sv,   "Margaret"sv,  "Ashley"sv,   "Kimberly"sv,  "Emily"sv,
    "Donna"sv,      "Michelle"sv, "Carol"sv,     "Amanda"sv,   "Melissa"sv,   "Deborah"sv,
    "Stephanie"sv,  "Dorothy"sv,  "Rebecca"sv,   "Sharon"sv,   "Laura"sv,     "Cynthia"sv,
    "Amy"sv,        "Kathleen"sv, "Angela"sv,    "Shirley"sv,  "Brenda"sv,    "Emma"sv,
    "Anna"sv,       "Pamela"sv,   "Nicole"sv,    "Samantha"sv, "Katherine"sv, "Christine"sv,
    "Helen"sv,      "Debra"sv,    "Rachel"sv,    "Carolyn"sv,  "Janet"sv,     "Maria"sv,
    "Olivia"sv,     "Heather"sv,  "Diane"sv,     "Julie"sv,    "Joyce"sv,     "Victoria"sv,
    "Ruth"sv,       "Virginia"sv, "Lauren"sv,    "Kelly"sv,    "Christina"sv, "Joan"sv,
    "Evelyn"sv,     "Judith"sv,   "Andrea"sv,    "Hannah"sv,   "Megan"sv,     "Cheryl"sv,
    "Jacqueline"sv, "Martha"sv,   "Madison"sv,   "Teresa"sv,   "Gloria"sv,    "Sara"sv,
    "Janice"sv,     "Ann"sv,      "Kathryn"sv,   "Abigail"sv,  "Sophia"sv,    "Frances"sv,
    "Jean"sv,       "Alice"sv,    "Judy"sv,      "Isabella"sv, "Julia"sv,     "Grace"sv,
    "Amber"sv,      "Denise"sv,   "Danielle"sv,  "Marilyn"sv,  "Beverly"sv,   "Charlotte"sv,
    "Natalie"sv,    "Theresa"sv,  "Diana"sv,     "Brittany"sv, "Doris"sv,     "Kayla"sv,
    "Alexis"sv,     "Lori"sv,     "Ava"sv,       "Mia"sv,      "Camila"sv,    "Priya"sv,
    "Mei"sv,        "Fatima"sv,   "Guadalupe"sv, "Aaliyah"sv,  "Yesenia"sv,   "Leah"sv,
};

constexpr std::array kMaleGiven = {
    "James"sv,   "Robert"sv,    "John"sv,     "Michael"sv,     "David"sv,     "William"sv,
    "Richard"sv, "Joseph"sv,    "Thomas"sv,   "Christopher"sv, "Charles"sv,   "Daniel"sv,
    "Matthew"sv, "Anthony"sv,   "Mark"sv,     "Donald"sv,      "Steven"sv,    "Andrew"sv,
    "Paul"sv,    "Joshua"sv,    "Kenneth"sv,  "Kevin"sv,       "Brian"sv,     "George"sv,
    "Timothy"sv, "Ronald"sv,    "Jason"sv,    "Edward"sv,      "Jeffrey"sv,   "Ryan"sv,
    "Jacob"sv,   "Gary"sv,      "Nicholas"sv, "Eric"sv,        "Jonathan"sv,  "Stephen"sv,
    "Larry"sv,   "Justin"sv,    "Scott"sv,    "Brandon"sv,     "Benjamin"sv,  "Samuel"sv,
    "Gregory"sv, "Alexander"sv, "Patrick"sv,  "Frank"sv,       "Raymond"sv,   "Jack"sv,
    "Dennis"sv,  "Jerry"sv,     "Tyler"sv,    "Aaron"sv,       "Jose"sv,      "Adam"sv,
    "Nathan"sv,  "Henry"sv,     "Zachary"sv,  "Douglas"sv,     "Peter"sv,     "Kyle"sv,
    "Noah"sv,    "Ethan"sv,     "Jeremy"sv,   "Walter"sv,      "Christian"sv, "Keith"sv,
    "Roger"sv,   "Terry"sv,     "Austin"sv,   "Sean"sv,        "Gerald"sv,    "Carl"sv,
    "Harold"sv,  "Dylan"sv,     "Arthur"sv,   "Lawrence"sv,    "Jordan"sv,    "Jesse"sv,
    "Bryan"sv,   "Billy"sv,     "Bruce"sv,    "Gabriel"sv,     "Joe"sv,       "Logan"sv,
    "Albert"sv,  "Willie"sv,    "Alan"sv,     "Eugene"sv,      "Russell"sv,   "Vincent"sv,
    "Liam"sv,    "Elijah"sv,    "Lucas"sv,    "Mason"sv,       "Luis"sv,      "Carlos"sv,
    "Juan"sv,    "Wei"sv,       "Arjun"sv,    "Omar"sv,        "Malik"sv,     "Hiroshi"sv,
};

constexpr std::array kFamily = {
    "Smith"sv,      "Johnson"sv,    "Williams"sv,  "Brown"sv,     "Jones"sv,     "Garcia"sv,
    "Miller"sv,     "Davis"sv,      "Rodriguez"sv, "Martinez"sv,  "Hernandez"sv, "Lopez"sv,
    "Gonzalez"sv,   "Wilson"sv,     "Anderson"sv,  "Thomas"sv,    "Taylor"sv,    "Moore"sv,
    "Jackson"sv,    "Martin"sv,     "Lee"sv,       "Perez"sv,     "Thompson"sv,  "White"sv,
    "Harris"sv,     "Sanchez"sv,    "Clark"sv,     "Ramirez"sv,   "Lewis"sv,     "Robinson"sv,
    "Walker"sv,     "Young"sv,      "Allen"sv,     "King"sv,      "Wright"sv,    "Scott"sv,
    "Torres"sv,     "Nguyen"sv,     "Hill"sv,      "Flores"sv,    "Green"sv,     "Adams"sv,
    "Nelson"sv,     "Baker"sv,      "Hall"sv,      "Rivera"sv,    "Campbell"sv,  "Mitchell"sv,
    "Carter"sv,     "Roberts"sv,    "Gomez"sv,     "Phillips"sv,  "Evans"sv,     "Turner"sv,
    "Diaz"sv,       "Parker"sv,     "Cruz"sv,      "Edwards"sv,   "Collins"sv,   "Reyes"sv,
    "Stewart"sv,    "Morris"sv,     "Morales"sv,   "Murphy"sv,    "Cook"sv,      "Rogers"sv,
    "Gutierrez"sv,  "Ortiz"sv,      "Morgan"sv,    "Cooper"sv,    "Peterson"sv,  "Bailey"sv,
    "Reed"sv,       "Kelly"sv,      "Howard"sv,    "Ramos"sv,     "Kim"sv,       "Cox"sv,
    "Ward"sv,       "Richardson"sv, "Watson"sv,    "Brooks"sv,    "Chavez"sv,    "Wood"sv,
    "James"sv,      "Bennett"sv,    "Gray"sv,      "Mendoza"sv,   "Ruiz"sv,      "Hughes"sv,
    "Price"sv,      "Alvarez"sv,    "Castillo"sv,  "Sanders"sv,   "Patel"sv,     "Myers"sv,
    "Long"sv,       "Ross"sv,       "Foster"sv,    "Jimenez"sv,   "Powell"sv,    "Jenkins"sv,
    "Perry"sv,      "Russell"sv,    "Sullivan"sv,  "Bell"sv,      "Coleman"sv,   "Butler"sv,
    "Henderson"sv,  "Barnes"sv,     "Gonzales"sv,  "Fisher"sv,    "Vasquez"sv,   "Simmons"sv,
    "Romero"sv,     "Jordan"sv,     "Patterson"sv, "Alexander"sv, "Hamilton"sv,  "Graham"sv,
    "Reynolds"sv,   "Griffin"sv,    "Wallace"sv,   "Moreno"sv,    "West"sv,      "Cole"sv,
    "Hayes"sv,      "Bryant"sv,     "Herrera"sv,   "Gibson"sv,    "Ellis"sv,     "Tran"sv,
    "Medina"sv,     "Aguilar"sv,    "Stevens"sv,   "Murray"sv,    "Ford"sv,      "Castro"sv,
    "Marshall"sv,   "Owens"sv,      "Harrison"sv,  "Fernandez"sv, "McDonald"sv,  "Woods"sv,
    "Washington"sv, "Kennedy"sv,    "Wells"sv,     "Vargas"sv,    "Henry"sv,     "Chen"sv,
    "Freeman"sv,    "Webb"sv,       "Tucker"sv,    "Guzman"sv,    "Burns"sv,     "Crawford"sv,
    "Olson"sv,      "Simpson"sv,    "Porter"sv,    "Hunter"sv,    "Gordon"sv,    "Mendez"sv,
    "Silva"sv,      "Shaw"sv,       "Snyder"sv,    "Mason"sv,     "Dixon"sv,     "Munoz"sv,
    "Hunt"sv,       "Hicks"sv,      "Holmes"sv,    "Palmer"sv,    "Wagner"sv,    "Black"sv,
    "Robertson"sv,  "Boyd"sv,       "Rose"sv,      "Stone"sv,     "Salazar"sv,   "Fox"sv,
    "Warren"sv,     "Mills"sv,      "Meyer"sv,     "Rice"sv,      "Schmidt"sv,   "Garza"sv,
    "Daniels"sv,    "Ferguson"sv,   "Nichols"sv,   "Stephens"sv,  "Soto"sv,      "Weaver"sv,
    "Ryan"sv,       "Gardner"sv,    "Payne"sv,     "Grant"sv,     "Dunn"sv,      "Kelley"sv,
    "Spencer"sv,    "Hawkins"sv,    "Arnold"sv,    "Pierce"sv,    "Vazquez"sv,   "Hansen"sv,
    "Peters"sv,     "Santos"sv,     "Hart"sv,      "Bradley"sv,   "Knight"sv,    "Elliott"sv,
    "Cunningham"sv, "Duncan"sv,     "Armstrong"sv, "Hudson"sv,    "Carroll"sv,   "Lane"sv,
    "Riley"sv,      "Andrews"sv,    "Alvarado"sv,  "Ray"sv,       "Delgado"sv,   "Berry"sv,
    "Perkins"sv,    "Hoffman"sv,    "Johnston"sv,  "Matthews"sv,  "Pena"sv,      "Richards"sv,
    "Contreras"sv,  "Willis"sv,     "Carpenter"sv, "Lawrence"sv,  "Sandoval"sv,  "Wang"sv,
    "O'Brien"sv,    "Nakamura"sv,   "Singh"sv,     "Khan"sv,      "Cohen"sv,     "Novak"sv,
};

constexpr std::array kStreets = {
    "Main"sv,       "Oak"sv,       "Pine"sv,     "Maple"sv,    "Cedar"sv,    "Elm"sv,
    "Washington"sv, "Lake"sv,      "Hill"sv,     "Park"sv,     "Walnut"sv,   "Sunset"sv,
    "Lincoln"sv,    "Jefferson"sv, "Jackson"sv,  "Highland"sv, "Church"sv,   "Willow"sv,
    "Meadow"sv,     "Ridge"sv,     "River"sv,    "Spring"sv,   "Forest"sv,   "Adams"sv,
    "Madison"sv,    "Franklin"sv,  "Cherry"sv,   "Chestnut"sv, "Birch"sv,    "Spruce"sv,
    "Hickory"sv,    "Magnolia"sv,  "Dogwood"sv,  "Sycamore"sv, "Lakeview"sv, "Center"sv,
    "Mill"sv,       "Valley"sv,    "Prospect"sv, "Union"sv,    "Broad"sv,    "Market"sv,
};

constexpr std::array kStreetSuffixes = {"St"sv,   "Ave"sv, "Rd"sv,  "Dr"sv, "Ln"sv,
                                        "Blvd"sv, "Ct"sv,  "Way"sv, "Pl"sv};

constexpr std::array kCities = {
    City{"New York", "NY", "100"},     City{"Los Angeles", "CA", "900"},
    City{"Chicago", "IL", "606"},      City{"Houston", "TX", "770"},
    City{"Phoenix", "AZ", "850"},      City{"Philadelphia", "PA", "191"},
    City{"San Antonio", "TX", "782"},  City{"San Diego", "CA", "921"},
    City{"Dallas", "TX", "752"},       City{"San Jose", "CA", "951"},
    City{"Austin", "TX", "787"},       City{"Jacksonville", "FL", "322"},
    City{"Columbus", "OH", "432"},     City{"Charlotte", "NC", "282"},
    City{"Indianapolis", "IN", "462"}, City{"Seattle", "WA", "981"},
    City{"Denver", "CO", "802"},       City{"Boston", "MA", "021"},
    City{"Nashville", "TN", "372"},    City{"Detroit", "MI", "482"},
    City{"Portland", "OR", "972"},     City{"Memphis", "TN", "381"},
    City{"Louisville", "KY", "402"},   City{"Baltimore", "MD", "212"},
    City{"Milwaukee", "WI", "532"},    City{"Albuquerque", "NM", "871"},
    City{"Tucson", "AZ", "857"},       City{"Fresno", "CA", "937"},
    City{"Sacramento", "CA", "958"},   City{"Kansas City", "MO", "641"},
    City{"Atlanta", "GA", "303"},      City{"Omaha", "NE", "681"},
    City{"Raleigh", "NC", "276"},      City{"Miami", "FL", "331"},
    City{"Minneapolis", "MN", "554"},  City{"Tulsa", "OK", "741"},
    City{"Cleveland", "OH", "441"},    City{"Pittsburgh", "PA", "152"},
    City{"St. Louis", "MO", "631"},    City{"Salt Lake City", "UT", "841"},
    City{"Richmond", "VA", "232"},     City{"Birmingham", "AL", "352"},
    City{"Rochester", "NY", "146"},    City{"Des Moines", "IA", "503"},
    City{"Madison", "WI", "537"},      City{"Boise", "ID", "837"},
    City{"Spokane", "WA", "992"},      City{"Burlington", "VT", "054"},
    City{"Portland", "ME", "041"},     City{"Anchorage", "AK", "995"},
    City{"Honolulu", "HI", "968"},     City{"Little Rock", "AR", "722"},
};

constexpr std::array kFacilityPrefixes = {
    "Mercy"sv,      "St. Luke's"sv,  "Providence"sv, "Good Samaritan"sv, "Riverside"sv,
    "Lakeside"sv,   "Sutter"sv,      "Baptist"sv,    "Memorial"sv,       "Sacred Heart"sv,
    "Valley"sv,     "Northside"sv,   "Unity"sv,      "Harbor"sv,         "Summit"sv,
    "St. Mary's"sv, "Cedar Grove"sv, "Meridian"sv,   "Highland"sv,       "Community"sv,
};

constexpr std::array kFacilityKinds = {
    "Medical Center"sv,    "General Hospital"sv, "Family Clinic"sv, "Health Center"sv,
    "Regional Hospital"sv, "Primary Care"sv,     "Urgent Care"sv,   "Community Hospital"sv,
};

constexpr std::array kSpecialties = {
    Specialty{"Family Medicine", 30, true},
    Specialty{"Internal Medicine", 20, true},
    Specialty{"Pediatrics", 9, true},
    Specialty{"Cardiology", 5, false},
    Specialty{"Endocrinology", 3, false},
    Specialty{"Emergency Medicine", 7, false},
    Specialty{"Obstetrics and Gynecology", 5, false},
    Specialty{"Orthopedic Surgery", 4, false},
    Specialty{"Dermatology", 2, false},
    Specialty{"Psychiatry", 4, false},
    Specialty{"Neurology", 3, false},
    Specialty{"Oncology", 3, false},
    Specialty{"Pulmonology", 2, false},
    Specialty{"Gastroenterology", 2, false},
    Specialty{"Nephrology", 1, false},
};

// SNOMED CT clinical findings "Allergy to ...". Weights roughly follow prevalence.
constexpr std::array kAllergies = {
    AllergyCode{"91936005", "Allergy to penicillin", "medication", "Hives", 18, 0.15},
    AllergyCode{"91935009", "Allergy to peanuts", "food", "Anaphylaxis", 7, 0.6},
    AllergyCode{"91934008", "Allergy to nut", "food", "Swelling of lips", 4, 0.4},
    AllergyCode{"300913006", "Shellfish allergy", "food", "Hives", 6, 0.3},
    AllergyCode{"417532002", "Allergy to fish", "food", "Nausea", 3, 0.2},
    AllergyCode{"91930004", "Allergy to eggs", "food", "Rash", 3, 0.1},
    AllergyCode{"425525006", "Allergy to dairy product", "food", "Abdominal pain", 5, 0.05},
    AllergyCode{"714035009", "Allergy to soya", "food", "Rash", 2, 0.05},
    AllergyCode{"418689008", "Allergy to grass pollen", "environment", "Sneezing", 10, 0.02},
    AllergyCode{"419263009", "Allergy to tree pollen", "environment", "Itchy watery eyes", 8, 0.02},
    AllergyCode{"232350006", "House dust mite allergy", "environment", "Wheezing", 8, 0.05},
    AllergyCode{"232347008", "Dander (animal) allergy", "environment", "Sneezing", 7, 0.02},
    AllergyCode{"419474003", "Allergy to mould", "environment", "Cough", 4, 0.05},
    AllergyCode{"424213003", "Allergy to bee venom", "environment", "Anaphylaxis", 2, 0.7},
    AllergyCode{"300916003", "Latex allergy", "environment", "Contact dermatitis", 2, 0.3},
};

// RxNorm clinical drugs (SCD) with their normalized names.
constexpr std::array kMedications = {
    MedicationCode{"197361", "Amlodipine 5 MG Oral Tablet", "1 tablet by mouth once daily", 8, 30,
                   false},
    MedicationCode{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
                   "1 tablet by mouth daily with evening meal", 7, 30, false},
    MedicationCode{"314076", "Lisinopril 10 MG Oral Tablet", "1 tablet by mouth once daily", 9, 30,
                   false},
    MedicationCode{"310798", "Hydrochlorothiazide 25 MG Oral Tablet",
                   "1 tablet by mouth every morning", 5, 35, false},
    MedicationCode{"312961", "Simvastatin 20 MG Oral Tablet", "1 tablet by mouth at bedtime", 8, 35,
                   false},
    MedicationCode{"314231", "Simvastatin 10 MG Oral Tablet", "1 tablet by mouth at bedtime", 3, 35,
                   false},
    MedicationCode{"866414", "24 HR Metoprolol succinate 100 MG Extended Release Oral Tablet",
                   "1 tablet by mouth once daily", 4, 40, false},
    MedicationCode{"313988", "Furosemide 40 MG Oral Tablet", "1 tablet by mouth once daily", 2, 50,
                   false},
    MedicationCode{"855332", "Warfarin Sodium 5 MG Oral Tablet",
                   "1 tablet by mouth once daily, dose per INR", 2, 50, false},
    MedicationCode{"309362", "Clopidogrel 75 MG Oral Tablet", "1 tablet by mouth once daily", 2, 45,
                   false},
    MedicationCode{"243670", "Aspirin 81 MG Oral Tablet", "1 tablet by mouth once daily", 6, 40,
                   false},
    MedicationCode{"197604", "Digoxin 0.125 MG Oral Tablet", "1 tablet by mouth once daily", 1, 60,
                   false},
    MedicationCode{"966222", "Levothyroxine Sodium 0.075 MG Oral Tablet",
                   "1 tablet by mouth every morning before breakfast", 5, 18, false},
    MedicationCode{"106892",
                   "Insulin isophane, human 70 UNT/ML / Insulin, regular, human 30 UNT/ML "
                   "Injectable Suspension [Humulin]",
                   "20 units subcutaneously twice daily before meals", 2, 30, false},
    MedicationCode{"310385", "Fluoxetine 20 MG Oral Capsule", "1 capsule by mouth once daily", 4,
                   12, false},
    MedicationCode{"312938", "Sertraline 100 MG Oral Tablet", "1 tablet by mouth once daily", 4, 12,
                   false},
    MedicationCode{"895994",
                   "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
                   "2 puffs inhaled twice daily", 3, 4, false},
    MedicationCode{"745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
                   "2 puffs inhaled every 4 to 6 hours as needed for wheezing", 5, 2, false},
    MedicationCode{"1014676", "Cetirizine hydrochloride 5 MG Oral Tablet",
                   "1 tablet by mouth once daily as needed", 5, 2, false},
    MedicationCode{"1000126", "1 ML Medroxyprogesterone acetate 150 MG/ML Injection",
                   "150 mg intramuscularly every 3 months", 1, 15, false},
    MedicationCode{"313782", "Acetaminophen 325 MG Oral Tablet",
                   "2 tablets by mouth every 6 hours as needed for pain", 8, 2, true},
    MedicationCode{"310965", "Ibuprofen 200 MG Oral Tablet",
                   "1 to 2 tablets by mouth every 6 hours as needed", 7, 6, true},
    MedicationCode{"849574", "Naproxen sodium 220 MG Oral Tablet",
                   "1 tablet by mouth every 12 hours as needed", 3, 12, true},
    MedicationCode{"308182", "Amoxicillin 250 MG Oral Capsule",
                   "1 capsule by mouth three times daily for 10 days", 6, 0, true},
    MedicationCode{"834061", "Penicillin V Potassium 250 MG Oral Tablet",
                   "1 tablet by mouth four times daily for 10 days", 2, 3, true},
    MedicationCode{"1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet",
                   "1 tablet by mouth every 6 hours as needed for severe pain", 1, 18, true},
    MedicationCode{"197591", "Diazepam 5 MG Oral Tablet",
                   "1 tablet by mouth twice daily as needed for anxiety", 1, 18, true},
};

constexpr std::array kConditions = {
    ConditionCode{"38341003", "Hypertensive disorder", 14, 25, 200, true},
    ConditionCode{"59621000", "Essential hypertension", 4, 25, 200, true},
    ConditionCode{"44054006", "Diabetes mellitus type 2", 8, 30, 200, true},
    ConditionCode{"15777000", "Prediabetes", 6, 25, 200, true},
    ConditionCode{"55822004", "Hyperlipidemia", 9, 30, 200, true},
    ConditionCode{"162864005", "Body mass index 30+ - obesity", 7, 18, 200, true},
    ConditionCode{"53741008", "Coronary heart disease", 3, 45, 200, true},
    ConditionCode{"49436004", "Atrial fibrillation", 2, 55, 200, true},
    ConditionCode{"84114007", "Heart failure", 2, 55, 200, true},
    ConditionCode{"22298006", "Myocardial infarction", 1, 45, 200, false},
    ConditionCode{"230690007", "Cerebrovascular accident", 1, 50, 200, false},
    ConditionCode{"13645005", "Chronic obstructive lung disease", 3, 45, 200, true},
    ConditionCode{"195967001", "Asthma", 7, 2, 200, true},
    ConditionCode{"233604007", "Pneumonia", 2, 0, 200, false},
    ConditionCode{"10509002", "Acute bronchitis", 6, 0, 200, false},
    ConditionCode{"444814009", "Viral sinusitis", 10, 0, 200, false},
    ConditionCode{"40055000", "Chronic sinusitis", 3, 12, 200, true},
    ConditionCode{"195662009", "Acute viral pharyngitis", 8, 0, 200, false},
    ConditionCode{"65363002", "Otitis media", 6, 0, 12, false},
    ConditionCode{"232353008", "Perennial allergic rhinitis with seasonal variation", 4, 3, 200,
                  true},
    ConditionCode{"24079001", "Atopic dermatitis", 3, 0, 200, true},
    ConditionCode{"271737000", "Anemia", 4, 0, 200, true},
    ConditionCode{"40930008", "Hypothyroidism", 4, 20, 200, true},
    ConditionCode{"35489007", "Depressive disorder", 6, 12, 200, true},
    ConditionCode{"197480006", "Anxiety disorder", 6, 10, 200, true},
    ConditionCode{"37796009", "Migraine", 4, 10, 200, true},
    ConditionCode{"84757009", "Epilepsy", 1, 0, 200, true},
    ConditionCode{"69896004", "Rheumatoid arthritis", 1, 30, 200, true},
    ConditionCode{"239873007", "Osteoarthritis of knee", 4, 45, 200, true},
    ConditionCode{"64859006", "Osteoporosis", 2, 55, 200, true},
    ConditionCode{"433144002", "Chronic kidney disease stage 3", 2, 50, 200, true},
    ConditionCode{"26929004", "Alzheimer's disease", 1, 65, 200, true},
    ConditionCode{"68496003", "Polyp of colon", 2, 45, 200, false},
    ConditionCode{"254837009", "Malignant neoplasm of breast", 1, 35, 200, true},
    ConditionCode{"72892002", "Normal pregnancy", 2, 18, 45, false},
};

constexpr std::array kEncounterTypes = {
    EncounterType{"AMB", "Office visit", 34, 15, 40},
    EncounterType{"AMB", "Follow-up visit", 18, 15, 30},
    EncounterType{"AMB", "Annual wellness visit", 12, 30, 60},
    EncounterType{"AMB", "Specialist consultation", 6, 30, 60},
    EncounterType{"VR", "Telehealth visit", 12, 10, 30},
    EncounterType{"EMER", "Emergency department visit", 8, 120, 480},
    EncounterType{"IMP", "Hospital admission", 5, 24 * 60, 7 * 24 * 60},
    EncounterType{"HH", "Home health visit", 5, 30, 90},
};

}  // namespace

std::span<const std::string_view> FemaleGivenNames() { return kFemaleGiven; }
std::span<const std::string_view> MaleGivenNames() { return kMaleGiven; }
std::span<const std::string_view> FamilyNames() { return kFamily; }
std::span<const std::string_view> StreetNames() { return kStreets; }
std::span<const std::string_view> StreetSuffixes() { return kStreetSuffixes; }
std::span<const City> Cities() { return kCities; }
std::span<const std::string_view> FacilityPrefixes() { return kFacilityPrefixes; }
std::span<const std::string_view> FacilityKinds() { return kFacilityKinds; }
std::span<const Specialty> Specialties() { return kSpecialties; }
std::span<const AllergyCode> Allergies() { return kAllergies; }
std::span<const MedicationCode> Medications() { return kMedications; }
std::span<const ConditionCode> Conditions() { return kConditions; }
std::span<const EncounterType> EncounterTypes() { return kEncounterTypes; }

}  // namespace continuum::seed::catalog
