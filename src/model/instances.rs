//! Stable BACnet instance numbers. A BMS binds to (object type, instance), so
//! a number once given to a point stays with that point id across restarts,
//! renames and added equipment, and is never handed to another point, even
//! after its point is removed. Persisted in `<data-dir>/bacnet-instances.json`.

use super::templates::ObjectType;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "bacnet-instances.json";
/// Highest instance number BACnet allows (22 bits, 4194303 is "unassigned").
pub const MAX_INSTANCE: u32 = 4_194_302;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InstanceRegistry {
    /// point id → (object type, instance)
    assigned: BTreeMap<String, (ObjectTypeName, u32)>,
    /// Next never-used instance per object type.
    next: BTreeMap<ObjectTypeName, u32>,
    #[serde(skip)]
    path: Option<PathBuf>,
    #[serde(skip)]
    dirty: bool,
}

/// Object types are stored by their BACnet name so the file reads plainly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
struct ObjectTypeName(ObjectType);

impl InstanceRegistry {
    /// An empty registry that is never saved (export without a data dir).
    pub fn ephemeral() -> Self {
        Self::default()
    }

    /// Loads `<dir>/bacnet-instances.json`, or starts empty if absent.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE_NAME);
        let mut reg = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<InstanceRegistry>(&bytes)
                .map_err(|e| format!("{}: corrupt instance registry: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => InstanceRegistry::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        reg.path = Some(path);
        Ok(reg)
    }

    /// The same numbers, but `save` will not write them back.
    pub fn read_only(mut self) -> Self {
        self.path = None;
        self
    }

    /// Writes the registry if anything changed.
    pub fn save(&mut self) -> Result<(), String> {
        let (Some(path), true) = (&self.path, self.dirty) else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        crate::fsutil::write_atomic(path, &json).map_err(|e| format!("{}: {e}", path.display()))?;
        self.dirty = false;
        Ok(())
    }

    /// Assigns numbers to every point: pinned ones first (they win), then
    /// the rest keep what they had or get the next unused number.
    /// Returns point id → instance.
    pub fn assign_all(
        &mut self,
        points: &[(String, ObjectType)],
        pinned: &HashMap<String, u32>,
    ) -> Result<HashMap<String, u32>, String> {
        let mut taken: HashMap<(ObjectType, u32), String> = HashMap::new();
        let mut out = HashMap::new();
        for (id, ty) in points {
            if let Some(&n) = pinned.get(id) {
                taken.insert((*ty, n), id.clone());
                self.record(id, *ty, n);
                out.insert(id.clone(), n);
            }
        }
        for (id, ty) in points {
            if out.contains_key(id) {
                continue;
            }
            let kept = self
                .assigned
                .get(id)
                .filter(|(t, n)| t.0 == *ty && !taken.contains_key(&(*ty, *n)))
                .map(|(_, n)| *n);
            let n = match kept {
                Some(n) => n,
                None => self.fresh(*ty, &taken)?,
            };
            taken.insert((*ty, n), id.clone());
            self.record(id, *ty, n);
            out.insert(id.clone(), n);
        }
        Ok(out)
    }

    fn record(&mut self, id: &str, ty: ObjectType, n: u32) {
        let entry = (ObjectTypeName(ty), n);
        if self.assigned.get(id) != Some(&entry) {
            self.assigned.insert(id.to_string(), entry);
            self.dirty = true;
        }
        let next = self.next.entry(ObjectTypeName(ty)).or_insert(1);
        if n >= *next {
            *next = n + 1;
            self.dirty = true;
        }
    }

    fn fresh(
        &mut self,
        ty: ObjectType,
        taken: &HashMap<(ObjectType, u32), String>,
    ) -> Result<u32, String> {
        let next = self.next.entry(ObjectTypeName(ty)).or_insert(1);
        while taken.contains_key(&(ty, *next)) {
            *next += 1;
        }
        if *next > MAX_INSTANCE {
            return Err(format!(
                "no free BACnet {} instance numbers left",
                ty.bacnet_name()
            ));
        }
        let n = *next;
        *next += 1;
        self.dirty = true;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(ids: &[&str]) -> Vec<(String, ObjectType)> {
        ids.iter()
            .map(|i| (i.to_string(), ObjectType::BinaryInput))
            .collect()
    }

    #[test]
    fn numbers_survive_restart_insertion_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = InstanceRegistry::open(dir.path()).unwrap();
        let first = r
            .assign_all(&pts(&["a", "b", "c"]), &HashMap::new())
            .unwrap();
        r.save().unwrap();
        // Restart with a point inserted before the others and one removed.
        let mut r = InstanceRegistry::open(dir.path()).unwrap();
        let second = r
            .assign_all(&pts(&["new", "a", "c"]), &HashMap::new())
            .unwrap();
        assert_eq!(first["a"], second["a"]);
        assert_eq!(first["c"], second["c"]);
        // The new point gets a never-used number, not b's.
        assert!(second["new"] > first["c"]);
        assert_ne!(second["new"], first["b"]);
    }

    #[test]
    fn a_pin_wins_and_moves_the_point_that_had_the_number() {
        let mut r = InstanceRegistry::ephemeral();
        let first = r.assign_all(&pts(&["a", "b"]), &HashMap::new()).unwrap();
        let pinned = HashMap::from([("b".to_string(), first["a"])]);
        let second = r.assign_all(&pts(&["a", "b"]), &pinned).unwrap();
        assert_eq!(second["b"], first["a"]);
        assert_ne!(second["a"], first["a"]);
    }
}
