//! Reading and writing a [`PruningRecipe`]: JSON, TOML and files, through the serde form in
//! `repr.rs`, with parse errors that name the field at fault.

use std::path::Path;

use super::repr::RecipeRepr;
use super::{PruningRecipe, RecipeMethod};
use crate::error::{PruneError, Result};

impl PruningRecipe {
    /// Reads a recipe from JSON: `{"steps": [{"parameters": [...], "method": ..., ...}]}`.
    ///
    /// # Errors
    /// [`PruneError::InvalidRecipe`] naming the field at fault: malformed JSON, an unknown
    /// field or method (`"steps[0].method"`), a value of the wrong type, an invalid amount, an
    /// argument the method needs or refuses.
    ///
    /// ```
    /// use tch_prune::{PruneError, PruningRecipe};
    ///
    /// let recipe = PruningRecipe::from_json_str(
    ///     r#"{"steps": [{"layers": ["Linear"], "method": "random_structured", "amount": 1, "dim": 0}]}"#,
    /// )?;
    /// assert_eq!(recipe.steps()[0].method().name(), "random_structured");
    ///
    /// let err = PruningRecipe::from_json_str(
    ///     r#"{"steps": [{"parameters": ["*"], "method": "l1_unstructured", "amount": 1.5}]}"#,
    /// ).unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidRecipe { field, .. } if field == "steps[0].amount"));
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn from_json_str(json: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(json);
        let repr: RecipeRepr = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| parse_error(e.path().to_string(), &e.inner().to_string()))?;
        de.end().map_err(|e| parse_error(String::new(), &e.to_string()))?;
        repr.try_into()
    }

    /// Reads a recipe from TOML: one `[[steps]]` table per step.
    ///
    /// # Errors
    /// As [`from_json_str`](Self::from_json_str), for TOML.
    ///
    /// ```
    /// use tch_prune::{PruneError, PruningRecipe};
    ///
    /// let recipe = PruningRecipe::from_toml_str(r#"
    ///     [[steps]]
    ///     parameters = ["conv?.weight"]
    ///     method = "l1_unstructured"
    ///     amount = 0.3
    /// "#)?;
    /// assert_eq!(recipe.steps()[0].parameters(), ["conv?.weight"]);
    ///
    /// let err = PruningRecipe::from_toml_str("[[steps]]\nparameters = [\"*\"]\nmethod = \"l2\"\n")
    ///     .unwrap_err();
    /// assert!(matches!(err, PruneError::InvalidRecipe { field, .. } if field == "steps[0].method"));
    /// # Ok::<(), PruneError>(())
    /// ```
    pub fn from_toml_str(toml: &str) -> Result<Self> {
        let de =
            toml::Deserializer::parse(toml).map_err(|e| toml_error(String::new(), &e, toml))?;
        let repr: RecipeRepr = serde_path_to_error::deserialize(de)
            .map_err(|e| toml_error(e.path().to_string(), e.inner(), toml))?;
        repr.try_into()
    }

    /// Reads a recipe file: JSON for a `.json` extension, TOML for `.toml`.
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be read; [`PruneError::InvalidRecipe`] with
    /// field `"path"` for another extension, and as
    /// [`from_json_str`](Self::from_json_str) / [`from_toml_str`](Self::from_toml_str).
    ///
    /// ```
    /// use tch_prune::PruningRecipe;
    ///
    /// let path = std::env::temp_dir().join(format!("recipe-doc-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[[steps]]\nparameters = [\"fc.weight\"]\nmethod = \"identity\"\n")?;
    /// let recipe = PruningRecipe::from_path(&path)?;
    /// assert_eq!(recipe.steps().len(), 1);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let read = || {
            std::fs::read_to_string(path).map_err(|source| PruneError::Io {
                operation: "read",
                path: path.to_path_buf(),
                source,
            })
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&read()?),
            Some("toml") => Self::from_toml_str(&read()?),
            _ => Err(PruneError::InvalidRecipe {
                field: "path".into(),
                reason: format!("{path:?}: expected a .json or .toml file"),
            }),
        }
    }

    /// The recipe as pretty-printed JSON, which [`from_json_str`](Self::from_json_str) reads
    /// back to an equal recipe.
    ///
    /// # Errors
    /// [`PruneError::InvalidRecipe`] when a value has no JSON form (a NaN amount, which only a
    /// recipe built from the public variants without validation can hold).
    ///
    /// ```
    /// use tch_prune::{PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::new(vec![
    ///     RecipeStep::new(RecipeMethod::l1_unstructured(0.5)?).with_parameters(["*.weight"]),
    /// ]);
    /// let json = recipe.to_json_string()?;
    /// assert!(json.contains(r#""method": "l1_unstructured""#));
    /// assert_eq!(PruningRecipe::from_json_str(&json)?, recipe);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn to_json_string(&self) -> Result<String> {
        self.check_serializable()?;
        serde_json::to_string_pretty(&RecipeRepr::from(self.clone())).map_err(|e| {
            PruneError::InvalidRecipe { field: "recipe".into(), reason: e.to_string() }
        })
    }

    /// The recipe as TOML (`[[steps]]` tables), which [`from_toml_str`](Self::from_toml_str)
    /// reads back to an equal recipe.
    ///
    /// # Errors
    /// As [`to_json_string`](Self::to_json_string).
    ///
    /// ```
    /// use tch_prune::{LayerKind, PruningRecipe, RecipeMethod, RecipeStep};
    ///
    /// let recipe = PruningRecipe::new(vec![
    ///     RecipeStep::new(RecipeMethod::ln_structured(2, 2, 0)?).with_layers([LayerKind::Conv2D]),
    /// ]);
    /// let toml = recipe.to_toml_string()?;
    /// assert!(toml.contains("[[steps]]") && toml.contains("layers = [\"Conv2D\"]"));
    /// assert_eq!(PruningRecipe::from_toml_str(&toml)?, recipe);
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn to_toml_string(&self) -> Result<String> {
        self.check_serializable()?;
        toml::to_string(&RecipeRepr::from(self.clone())).map_err(|e| PruneError::InvalidRecipe {
            field: "recipe".into(),
            reason: e.to_string(),
        })
    }

    /// What is written can be read back: the recipe format has no form for hashed random
    /// draws (it always means PyTorch's), so such a method is refused rather than changed.
    fn check_serializable(&self) -> Result<()> {
        for (i, step) in self.steps.iter().enumerate() {
            let hashed = match step.method {
                RecipeMethod::RandomUnstructured(m) | RecipeMethod::GlobalRandomUnstructured(m) => {
                    m.uses_hashed_draws()
                }
                _ => false,
            };
            if hashed {
                return Err(PruneError::InvalidRecipe {
                    field: format!("steps[{i}].method"),
                    reason: "random_unstructured with hashed draws has no recipe form (recipes \
                             always draw as PyTorch does)"
                        .into(),
                });
            }
        }
        Ok(())
    }
}

/// `InvalidRecipe` for a serde error at `path`. serde reports a missing or unknown field at
/// the struct that lacks or has it; the field itself is named in the message, so it is
/// appended to the path (`steps[0]` + "missing field `method`" gives `steps[0].method`).
fn parse_error(path: String, message: &str) -> PruneError {
    let mut field = path;
    if field == "." {
        field.clear();
    }
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.split_once(prefix))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name);
    if let Some(name) = named {
        if !field.ends_with(name) {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
        }
    }
    if field.is_empty() {
        field = "recipe".into();
    }
    // Some values name their field themselves (`n: unknown norm ...`): say it once.
    let leaf = field.rsplit('.').next().unwrap_or_default();
    let reason = message.strip_prefix(&format!("{leaf}: ")).unwrap_or(message).to_string();
    PruneError::InvalidRecipe { field, reason }
}

/// [`parse_error`] for TOML, whose errors carry a byte span rather than a line in the message.
fn toml_error(path: String, e: &toml::de::Error, source: &str) -> PruneError {
    match e.span() {
        Some(span) => {
            let line = source.get(..span.start).map_or(0, |before| before.matches('\n').count());
            parse_error(path, &format!("{} (line {})", e.message().trim_end(), line + 1))
        }
        None => parse_error(path, e.message().trim_end()),
    }
}
