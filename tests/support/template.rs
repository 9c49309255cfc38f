//! infra/template.yaml read as the Lambda service reads it: a function's environment is the
//! Globals' variables plus its own, with `!Ref`, `!GetAtt` and `!Sub` resolved to the names of a
//! deployment (here the resources provisioned on moto).

use std::collections::BTreeMap;

use serde_yaml::Value;

pub const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");

/// What the template's references resolve to in one deployment.
#[derive(Debug, Default, Clone)]
pub struct Deployment {
    /// `!Ref X` (resources, parameters and pseudo parameters such as `AWS::Region`).
    pub refs: BTreeMap<String, String>,
    /// `!GetAtt X.Y`, keyed "X.Y".
    pub attributes: BTreeMap<String, String>,
}

pub struct Template {
    root: Value,
}

impl Template {
    pub fn load() -> Self {
        let text = std::fs::read_to_string(TEMPLATE).expect("infra/template.yaml is readable");
        Self {
            root: serde_yaml::from_str(&text).expect("infra/template.yaml is YAML"),
        }
    }

    /// The logical ids of the template's functions, with the binary each one runs.
    pub fn functions(&self) -> BTreeMap<String, String> {
        let resources = self.root["Resources"]
            .as_mapping()
            .expect("the template has Resources");
        resources
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(id, r)| {
                let binary = r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id:?} names no Binary in its build metadata"));
                (
                    id.as_str().expect("a logical id").to_owned(),
                    binary.to_owned(),
                )
            })
            .collect()
    }

    /// The parameters' defaults, for `!Ref` of a parameter.
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        self.root["Parameters"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.as_str()?.to_owned(),
                            scalar(&v["Default"]).unwrap_or_default(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The environment the Lambda service gives `function`, resolved against `deployment`.
    pub fn environment(&self, function: &str, deployment: &Deployment) -> BTreeMap<String, String> {
        let global = &self.root["Globals"]["Function"]["Environment"]["Variables"];
        let own = &self.root["Resources"][function]["Properties"]["Environment"]["Variables"];
        assert!(
            !self.root["Resources"][function].is_null(),
            "no resource {function} in the template"
        );
        let mut env = BTreeMap::new();
        for vars in [global, own] {
            let Some(vars) = vars.as_mapping() else {
                continue;
            };
            for (name, value) in vars {
                let name = name
                    .as_str()
                    .expect("variable names are strings")
                    .to_owned();
                let value = resolve(value, deployment)
                    .unwrap_or_else(|e| panic!("{function}'s {name}: {e}"));
                env.insert(name, value);
            }
        }
        env
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn resolve(value: &Value, d: &Deployment) -> Result<String, String> {
    if let Some(s) = scalar(value) {
        return Ok(s);
    }
    let Value::Tagged(tagged) = value else {
        return Err(format!("cannot resolve {value:?}"));
    };
    let arg = tagged
        .value
        .as_str()
        .ok_or_else(|| format!("{} of a non-string", tagged.tag))?;
    let lookup = |name: &str| -> Result<String, String> {
        match name.split_once('.') {
            Some(_) => d.attributes.get(name),
            None => d.refs.get(name),
        }
        .cloned()
        .ok_or_else(|| format!("the test deployment has no value for {name}"))
    };
    match tagged.tag.to_string().as_str() {
        "!Ref" => lookup(arg),
        "!GetAtt" => lookup(arg),
        "!Sub" => {
            let mut out = String::new();
            let mut rest = arg;
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed ${{ in {arg}"))?;
                out.push_str(&lookup(&rest[start + 2..start + end])?);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Ok(out)
        }
        other => Err(format!("the test does not resolve {other}")),
    }
}
