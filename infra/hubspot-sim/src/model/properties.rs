//! Property definitions: the built-in ones of each object type, as HubSpot's properties API describes them.

use super::*;

/// A property option (enumerations).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PropertyOption {
    pub label: String,
    pub value: String,
    pub display_order: i32,
    pub hidden: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ModificationMetadata {
    pub archivable: bool,
    pub read_only_definition: bool,
    pub read_only_value: bool,
}

impl Default for ModificationMetadata {
    fn default() -> Self {
        Self {
            archivable: true,
            read_only_definition: false,
            read_only_value: false,
        }
    }
}

/// `GET /crm/v3/properties/{type}` entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct PropertyDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub prop_type: String,
    pub field_type: String,
    pub group_name: String,
    pub description: String,
    pub options: Vec<PropertyOption>,
    pub display_order: i32,
    pub hidden: bool,
    pub calculated: bool,
    pub external_options: bool,
    pub has_unique_value: bool,
    pub form_field: bool,
    pub hubspot_defined: Option<bool>,
    pub modification_metadata: ModificationMetadata,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub archived: bool,
}

impl Default for PropertyDef {
    fn default() -> Self {
        Self {
            name: String::new(),
            label: String::new(),
            prop_type: "string".into(),
            field_type: "text".into(),
            group_name: "custom".into(),
            description: String::new(),
            options: Vec::new(),
            display_order: -1,
            hidden: false,
            calculated: false,
            external_options: false,
            has_unique_value: false,
            form_field: true,
            hubspot_defined: None,
            modification_metadata: ModificationMetadata::default(),
            created_at: None,
            updated_at: None,
            archived: false,
        }
    }
}

fn opts(values: &[(&str, &str)]) -> Vec<PropertyOption> {
    values
        .iter()
        .enumerate()
        .map(|(i, (value, label))| PropertyOption {
            label: label.to_string(),
            value: value.to_string(),
            display_order: i as i32,
            hidden: false,
        })
        .collect()
}

fn def(name: &str, label: &str, ty: &str, field: &str, group: &str) -> PropertyDef {
    PropertyDef {
        name: name.into(),
        label: label.into(),
        prop_type: ty.into(),
        field_type: field.into(),
        group_name: group.into(),
        hubspot_defined: Some(true),
        created_at: Some("2019-08-06T02:41:08.029Z".into()),
        updated_at: Some("2019-08-06T02:41:08.029Z".into()),
        ..Default::default()
    }
}

fn readonly(mut d: PropertyDef) -> PropertyDef {
    d.modification_metadata = ModificationMetadata {
        archivable: false,
        read_only_definition: true,
        read_only_value: true,
    };
    d.calculated = false;
    d.form_field = false;
    d
}

fn enumeration(mut d: PropertyDef, values: &[(&str, &str)]) -> PropertyDef {
    d.options = opts(values);
    d
}

pub const LIFECYCLE_STAGES: &[(&str, &str)] = &[
    ("subscriber", "Subscriber"),
    ("lead", "Lead"),
    ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"),
    ("opportunity", "Opportunity"),
    ("customer", "Customer"),
    ("evangelist", "Evangelist"),
    ("other", "Other"),
];

pub const LEAD_STATUSES: &[(&str, &str)] = &[
    ("NEW", "New"),
    ("OPEN", "Open"),
    ("IN_PROGRESS", "In Progress"),
    ("OPEN_DEAL", "Open Deal"),
    ("UNQUALIFIED", "Unqualified"),
    ("ATTEMPTED_TO_CONTACT", "Attempted to Contact"),
    ("CONNECTED", "Connected"),
    ("BAD_TIMING", "Bad Timing"),
];

pub const INDUSTRIES: &[(&str, &str)] = &[
    ("COMPUTER_SOFTWARE", "Computer Software"),
    (
        "INFORMATION_TECHNOLOGY_AND_SERVICES",
        "Information Technology and Services",
    ),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"),
    ("RETAIL", "Retail"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"),
    ("CONSTRUCTION", "Construction"),
    ("EDUCATION_MANAGEMENT", "Education Management"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("ENTERTAINMENT", "Entertainment"),
];

/// Pipelines: (pipeline id, label, stages (id, label, probability)).
/// A deal stage: (id, label, probability).
pub type Stage = (&'static str, &'static str, &'static str);
/// A pipeline: (id, label, stages).
pub type Pipeline = (&'static str, &'static str, &'static [Stage]);

pub const PIPELINES: &[Pipeline] = &[
    (
        "default",
        "Sales Pipeline",
        &[
            ("appointmentscheduled", "Appointment Scheduled", "0.2"),
            ("qualifiedtobuy", "Qualified To Buy", "0.4"),
            ("presentationscheduled", "Presentation Scheduled", "0.6"),
            ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
            ("contractsent", "Contract Sent", "0.9"),
            ("closedwon", "Closed Won", "1.0"),
            ("closedlost", "Closed Lost", "0.0"),
        ],
    ),
    (
        "enterprise",
        "Enterprise Pipeline",
        &[
            ("ent_discovery", "Discovery", "0.1"),
            ("ent_proposal", "Proposal", "0.5"),
            ("ent_negotiation", "Negotiation", "0.75"),
            ("ent_closedwon", "Closed Won", "1.0"),
            ("ent_closedlost", "Closed Lost", "0.0"),
        ],
    ),
];

/// HubSpot-defined properties of a type (the simulator's schema).
pub fn builtin_properties(ty: ObjectType) -> Vec<PropertyDef> {
    let mut v = vec![
        readonly(def(
            "hs_object_id",
            "Record ID",
            "number",
            "number",
            match ty {
                ObjectType::Companies => "companyinformation",
                ObjectType::Contacts => "contactinformation",
                ObjectType::Deals => "dealinformation",
            },
        )),
        readonly(def("createdate", "Create Date", "datetime", "date", "")),
        readonly(def(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            "",
        )),
        def("hubspot_owner_id", "Owner", "enumeration", "select", ""),
    ];
    let group = match ty {
        ObjectType::Companies => "companyinformation",
        ObjectType::Contacts => "contactinformation",
        ObjectType::Deals => "dealinformation",
    };
    for d in v.iter_mut() {
        if d.group_name.is_empty() {
            d.group_name = group.into();
        }
    }
    let g = group;
    match ty {
        ObjectType::Companies => {
            v.extend([
                def("name", "Company name", "string", "text", g),
                def("domain", "Company Domain Name", "string", "text", g),
                enumeration(
                    def("industry", "Industry", "enumeration", "select", g),
                    INDUSTRIES,
                ),
                def(
                    "numberofemployees",
                    "Number of Employees",
                    "number",
                    "number",
                    g,
                ),
                def("annualrevenue", "Annual Revenue", "number", "number", g),
                enumeration(
                    def(
                        "lifecyclestage",
                        "Lifecycle Stage",
                        "enumeration",
                        "radio",
                        g,
                    ),
                    LIFECYCLE_STAGES,
                ),
                def("city", "City", "string", "text", g),
                def("country", "Country/Region", "string", "text", g),
                def("phone", "Phone Number", "string", "phonenumber", g),
                def("description", "Description", "string", "textarea", g),
                readonly(def(
                    "hs_last_sales_activity_date",
                    "Last Engagement Date",
                    "datetime",
                    "date",
                    g,
                )),
            ]);
        }
        ObjectType::Contacts => {
            v.push(readonly(def(
                "lastmodifieddate",
                "Last Modified Date",
                "datetime",
                "date",
                g,
            )));
            v.extend([
                def("email", "Email", "string", "text", g),
                def("firstname", "First Name", "string", "text", g),
                def("lastname", "Last Name", "string", "text", g),
                def("company", "Company Name", "string", "text", g),
                def("jobtitle", "Job Title", "string", "text", g),
                def(
                    "notes_last_updated",
                    "Last Activity Date",
                    "datetime",
                    "date",
                    g,
                ),
                readonly(def(
                    "hs_last_sales_activity_date",
                    "Last Engagement Date",
                    "datetime",
                    "date",
                    g,
                )),
                def("phone", "Phone Number", "string", "phonenumber", g),
                enumeration(
                    def(
                        "lifecyclestage",
                        "Lifecycle Stage",
                        "enumeration",
                        "radio",
                        g,
                    ),
                    LIFECYCLE_STAGES,
                ),
                enumeration(
                    def("hs_lead_status", "Lead Status", "enumeration", "radio", g),
                    LEAD_STATUSES,
                ),
            ]);
        }
        ObjectType::Deals => {
            let pipelines: Vec<(&str, &str)> =
                PIPELINES.iter().map(|(id, l, _)| (*id, *l)).collect();
            let stages: Vec<(&str, &str)> = PIPELINES
                .iter()
                .flat_map(|(_, _, s)| s.iter().map(|(id, l, _)| (*id, *l)))
                .collect();
            v.extend([
                def("dealname", "Deal Name", "string", "text", g),
                def("amount", "Amount", "number", "number", g),
                enumeration(
                    def("pipeline", "Pipeline", "enumeration", "select", g),
                    &pipelines,
                ),
                enumeration(
                    def("dealstage", "Deal Stage", "enumeration", "radio", g),
                    &stages,
                ),
                def("closedate", "Close Date", "datetime", "date", g),
                def(
                    "hs_deal_stage_probability",
                    "Deal Stage Probability",
                    "number",
                    "number",
                    g,
                ),
                enumeration(
                    def("dealtype", "Deal Type", "enumeration", "radio", g),
                    &[
                        ("newbusiness", "New Business"),
                        ("existingbusiness", "Existing Business"),
                    ],
                ),
                def("description", "Deal Description", "string", "textarea", g),
            ]);
        }
    }
    for (i, d) in v.iter_mut().enumerate() {
        d.display_order = i as i32;
    }
    v
}
