//! The Rust types whose schemas the documents start from: every kind the resource table
//! serves, the kinds its subresources speak, and the meta types of the generic
//! operations. What they reach follows by itself; list kinds come from the schema table.

use k8s_openapi::api::{
    admissionregistration, apps, authentication, authorization, autoscaling, batch, certificates,
    coordination, core, discovery, events, flowcontrol, networking, node, policy, rbac, scheduling,
    storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta;
use k8s_openapi::apimachinery::pkg::version;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use k8s_openapi::schemars::SchemaGenerator;

macro_rules! roots {
    ($($t:ty),* $(,)?) => {
        /// Registers every root type's schema (and what it reaches) with `generator`.
        pub(super) fn add(generator: &mut SchemaGenerator) {
            $( generator.subschema_for::<$t>(); )*
        }

        /// How many root types there are (for tests).
        #[cfg(test)]
        pub(super) const COUNT: usize = [$(stringify!($t)),*].len();
    };
}

roots! {
    core::v1::Binding,
    core::v1::ComponentStatus,
    core::v1::ConfigMap,
    core::v1::Endpoints,
    core::v1::Event,
    core::v1::LimitRange,
    core::v1::Namespace,
    core::v1::Node,
    core::v1::PersistentVolumeClaim,
    core::v1::PersistentVolume,
    core::v1::Pod,
    core::v1::PodTemplate,
    core::v1::ReplicationController,
    core::v1::ResourceQuota,
    core::v1::Secret,
    core::v1::ServiceAccount,
    core::v1::Service,
    apiregistration::v1::APIService,
    apps::v1::ControllerRevision,
    apps::v1::DaemonSet,
    apps::v1::Deployment,
    apps::v1::ReplicaSet,
    apps::v1::StatefulSet,
    events::v1::Event,
    authentication::v1::SelfSubjectReview,
    authentication::v1::TokenReview,
    authentication::v1::TokenRequest,
    authorization::v1::LocalSubjectAccessReview,
    authorization::v1::SelfSubjectAccessReview,
    authorization::v1::SelfSubjectRulesReview,
    authorization::v1::SubjectAccessReview,
    autoscaling::v1::HorizontalPodAutoscaler,
    autoscaling::v1::Scale,
    autoscaling::v2::HorizontalPodAutoscaler,
    batch::v1::CronJob,
    batch::v1::Job,
    certificates::v1::CertificateSigningRequest,
    networking::v1::IngressClass,
    networking::v1::Ingress,
    networking::v1::IPAddress,
    networking::v1::NetworkPolicy,
    networking::v1::ServiceCIDR,
    policy::v1::Eviction,
    policy::v1::PodDisruptionBudget,
    rbac::v1::ClusterRoleBinding,
    rbac::v1::ClusterRole,
    rbac::v1::RoleBinding,
    rbac::v1::Role,
    storage::v1::CSIDriver,
    storage::v1::CSINode,
    storage::v1::CSIStorageCapacity,
    storage::v1::StorageClass,
    storage::v1::VolumeAttachment,
    admissionregistration::v1::MutatingWebhookConfiguration,
    admissionregistration::v1::ValidatingAdmissionPolicy,
    admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    admissionregistration::v1::ValidatingWebhookConfiguration,
    apiextensions::v1::CustomResourceDefinition,
    scheduling::v1::PriorityClass,
    coordination::v1::Lease,
    node::v1::RuntimeClass,
    discovery::v1::EndpointSlice,
    flowcontrol::v1::FlowSchema,
    flowcontrol::v1::PriorityLevelConfiguration,
    meta::v1::APIGroup,
    meta::v1::APIGroupList,
    meta::v1::APIResourceList,
    meta::v1::APIVersions,
    meta::v1::DeleteOptions,
    meta::v1::ListMeta,
    meta::v1::Patch,
    meta::v1::Status,
    meta::v1::WatchEvent<k8s_openapi::apimachinery::pkg::runtime::RawExtension>,
    version::Info,
}
