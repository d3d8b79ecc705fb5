//! A pod's volumes on the node's disk (emptyDir, configMap, secret, hostPath, projected,
//! downwardAPI) and the mounts each container gets.
